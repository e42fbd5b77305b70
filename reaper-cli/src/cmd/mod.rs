//! One module per subcommand: argument structs and the glue from validated
//! settings to the library.

pub mod diff;
pub mod doctor;
pub mod gate;
pub mod generate;
pub mod help;
pub mod record;
pub mod report;
pub mod stdout;
