//! Prints the kernel families this processor runs, one per line, slowest first, then
//! `default <family>`: the family `Fast::new` runs (`PC_ISA`, else the best detected).
//! scripts/test.d/45-isa.sh reads it to run the tests once per family.
//!
//! `cargo run -p pcnet-std --example isa`

use pcnet_std::fast::{Fast, Isa};

fn main() -> Result<(), pcnet_std::Error> {
    for isa in Isa::available() {
        println!("{isa}");
    }
    println!("default {}", Fast::new()?.isa());
    Ok(())
}
