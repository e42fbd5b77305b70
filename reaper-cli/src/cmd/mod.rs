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

/// `--max-input`, shared by the commands that read run files.
#[derive(Clone, Debug, clap::Args)]
pub struct InputArgs {
    /// Most bytes of run files (every *.json read) and episodes this
    /// command reads, SIZE[,episodes=N]; more is refused before it is read.
    /// Memory stays under 3× the bytes read.
    #[arg(long, value_name = "SIZE", default_value_t = crate::input::MaxInput::default())]
    pub max_input: crate::input::MaxInput,
}

impl InputArgs {
    /// A fresh budget for one command.
    pub fn budget(&self) -> crate::input::Budget {
        crate::input::Budget::new(self.max_input)
    }
}
