//! Sort the common-passwords list into `OUT_DIR` so `password` searches it in place.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=assets/common-passwords.txt");
    // Sorted bytewise (Rust's `str` order) and deduplicated, one per line: a binary search
    // over the embedded text needs no heap, where a set built at start took several MiB.
    let list = std::fs::read_to_string("assets/common-passwords.txt")?;
    let mut words: Vec<&str> = list.lines().filter(|w| !w.is_empty()).collect();
    words.sort_unstable();
    words.dedup();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("cargo sets no OUT_DIR")?);
    std::fs::write(
        out.join("common-passwords.sorted.txt"),
        words.join("\n") + "\n",
    )?;
    Ok(())
}
