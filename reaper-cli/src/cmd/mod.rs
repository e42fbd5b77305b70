//! One module per subcommand: argument structs and the glue from validated
//! settings to the library.

pub mod doctor;
pub mod record;
pub mod report;
