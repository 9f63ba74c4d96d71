//! Writes the coloured-shapes image folder that `flatmin compare` can be tried on:
//! `cargo run --release -p flatmin-cli --example shapes -- DIR [PER_CLASS] [SIDE] [SEED]`
//! (defaults: 200 images per class, 24×24 pixels, seed 0).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: shapes DIR [PER_CLASS] [SIDE] [SEED]");
        std::process::exit(2);
    };
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).map_or(default, |s| {
            s.parse().unwrap_or_else(|_| {
                eprintln!("shapes: `{s}` is not a whole number");
                std::process::exit(2)
            })
        })
    };
    let (per_class, side, seed) = (number(1, 200) as usize, number(2, 24) as u32, number(3, 0));
    if let Err(e) = flatmin_lab::data::shapes::write(std::path::Path::new(dir), per_class, side, seed) {
        eprintln!("shapes: {dir}: {e}");
        std::process::exit(1);
    }
    println!("wrote {per_class} images per class ({side}×{side}) of circle, square, triangle into {dir}");
}
