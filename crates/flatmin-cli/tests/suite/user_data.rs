//! The readers of the user's own data (`flatmin compare --data`): image folders (PNG and JPEG
//! files the tests write) and CSV files, including every malformed case the readers name.

use std::path::{Path, PathBuf};

use flatmin_lab::data::input::{self, InputError, InputOptions, Loaded, parse_image_size};
use flatmin_lab::data::split;
use image::{GrayImage, Luma, Rgb, RgbImage};

use crate::common::{Scratch, scratch};

fn rgb(w: u32, h: u32, colour: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(colour))
}

/// `n` solid images of `colour` (varied a little per image) in `dir/class/`, as `ext` files.
fn class_folder(dir: &Path, class: &str, n: usize, size: (u32, u32), colour: [u8; 3], ext: &str) {
    let folder = dir.join(class);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..n {
        let c = colour.map(|v| v.saturating_add(i as u8));
        rgb(size.0, size.1, c)
            .save(folder.join(format!("{i:02}.{ext}")))
            .unwrap();
    }
}

fn load(path: &Path) -> Result<Loaded, InputError> {
    input::load(path, &InputOptions::default())
}

fn load_with(path: &Path, f: impl FnOnce(&mut InputOptions)) -> Result<Loaded, InputError> {
    let mut o = InputOptions::default();
    f(&mut o);
    input::load(path, &o)
}

fn err(r: Result<Loaded, InputError>) -> (InputError, String) {
    match r {
        Ok(l) => panic!("expected an error, read {}", l.description),
        Err(e) => {
            let text = e.to_string();
            (e, text)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Image folders

#[test]
fn a_flat_folder_is_split_seeded_and_stratified_keeping_a_common_size() {
    let dir = scratch("flat");
    class_folder(&dir, "red", 10, (6, 5), [200, 10, 10], "png");
    class_folder(&dir, "green", 10, (6, 5), [10, 200, 10], "png");
    class_folder(&dir, "blue", 5, (6, 5), [10, 10, 200], "png");
    let a = load(&dir).unwrap();
    let (train, test) = (&a.split.train, &a.split.test);
    assert_eq!(train.class_names, ["blue", "green", "red"], "classes in sorted order");
    assert_eq!(
        (train.channels, train.height, train.width),
        (3, 5, 6),
        "all 6×5: size kept"
    );
    assert_eq!(
        test.class_counts(),
        vec![1, 2, 2],
        "20 % of each class: round(5·0.2), round(10·0.2)"
    );
    assert_eq!(train.class_counts(), vec![4, 8, 8]);
    assert!(train.features.is_none() && train.images.len() == 20 * 3 * 30);
    assert!(
        a.description.contains("3 classes, 20 training and 5 test images"),
        "{}",
        a.description
    );
    assert!(
        a.description.contains("seeded stratified split, 20 % test"),
        "{}",
        a.description
    );
    // Planar pixels: a "blue" image has its blue plane at ~200 and red and green at ~10.
    let blue = train.labels.iter().position(|&l| l == 0).unwrap();
    let px = train.image(blue).unwrap();
    assert!(px[..30].iter().all(|&v| (10..16).contains(&v)) && px[60..].iter().all(|&v| (200..206).contains(&v)));
    // The same seed gives the same split; another seed another one.
    assert_eq!(load(&dir).unwrap().split, a.split);
    let other = load_with(&dir, |o| o.seed = 7).unwrap();
    assert_ne!(other.split.test.images, a.split.test.images);
    assert_eq!(other.split.test.class_counts(), vec![1, 2, 2]);
    let half = load_with(&dir, |o| o.test_fraction = 0.5).unwrap();
    assert_eq!(half.split.test.class_counts(), vec![3, 5, 5], "round(2.5) = 3");
}

#[test]
fn grey_images_give_one_channel_and_colour_needs_real_colour() {
    let dir = scratch("grey");
    for (class, v) in [("dark", 40u8), ("light", 220u8)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..3 {
            GrayImage::from_pixel(4, 4, Luma([v + i]))
                .save(dir.join(class).join(format!("{i}.png")))
                .unwrap();
        }
        // Stored as RGB, but grey: still one channel.
        rgb(4, 4, [v; 3])
            .save(dir.join(class).join("rgb-but-grey.png"))
            .unwrap();
    }
    let grey = load(&dir).unwrap();
    assert_eq!(grey.split.train.channels, 1, "{}", grey.description);
    assert!(grey.description.contains("4×4 grey"), "{}", grey.description);
    let all: Vec<u8> = grey
        .split
        .train
        .images
        .iter()
        .chain(&grey.split.test.images)
        .copied()
        .collect();
    assert!(
        all.iter().all(|&v| [40, 41, 42, 220, 221, 222].contains(&v)),
        "exact grey values"
    );
    // --channels 3 on grey images: three equal planes.
    let three = load_with(&dir, |o| o.channels = Some(3)).unwrap();
    let px = three.split.train.image(0).unwrap();
    assert_eq!(three.split.train.channels, 3);
    assert!(px[..16] == px[16..32] && px[16..32] == px[32..]);
    // One coloured pixel in one image makes the default RGB.
    let mut img = rgb(4, 4, [40, 40, 40]);
    img.put_pixel(1, 1, Rgb([41, 40, 40]));
    img.save(dir.join("dark").join("tinted.png")).unwrap();
    assert_eq!(load(&dir).unwrap().split.train.channels, 3);
    // --channels 1 turns colour into luma.
    let red = scratch("red-to-grey");
    class_folder(&red, "a", 2, (3, 3), [255, 0, 0], "png");
    class_folder(&red, "b", 2, (3, 3), [0, 0, 255], "png");
    let l = load_with(&red, |o| o.channels = Some(1)).unwrap();
    assert_eq!(l.split.train.channels, 1);
    let a = l.split.train.labels.iter().position(|&c| c == 0).unwrap();
    let v = l.split.train.image(a).unwrap()[0];
    assert!((50..60).contains(&v), "Rec. 709 luma of pure red ≈ 54, got {v}");
}

#[test]
fn mixed_sizes_are_resized_and_image_size_chooses_the_size() {
    let dir = scratch("sizes");
    class_folder(&dir, "a", 3, (10, 10), [200, 50, 50], "png");
    class_folder(&dir, "b", 3, (40, 20), [50, 50, 200], "png");
    let l = load(&dir).unwrap();
    assert_eq!(
        (l.split.train.height, l.split.train.width),
        (32, 32),
        "colour default 32×32"
    );
    assert!(l.description.contains("32×32 RGB (resized)"), "{}", l.description);
    // A solid image stays solid when resized.
    let px = l.split.train.image(0).unwrap();
    assert!(px[..1024].iter().all(|&v| (v as i32 - px[0] as i32).abs() <= 1));
    let g = load_with(&dir, |o| o.channels = Some(1)).unwrap();
    assert_eq!(
        (g.split.train.height, g.split.train.width),
        (28, 28),
        "grey default 28×28"
    );
    let s = load_with(&dir, |o| o.image_size = Some((8, 12))).unwrap();
    assert_eq!((s.split.train.height, s.split.train.width), (8, 12));
    assert_eq!(parse_image_size("16").unwrap(), (16, 16));
    assert_eq!(parse_image_size("12x8").unwrap(), (8, 12), "WIDTHxHEIGHT");
    assert!(matches!(parse_image_size("big"), Err(InputError::Option { .. })));
    let zero = err(load_with(&dir, |o| o.image_size = Some((0, 4)))).1;
    assert!(zero.contains("--image-size"), "{zero}");
    assert!(
        err(load_with(&dir, |o| o.channels = Some(2)))
            .1
            .contains("--channels 2")
    );
    assert!(
        err(load_with(&dir, |o| o.test_fraction = 1.0))
            .1
            .contains("--test-fraction")
    );
}

#[test]
fn jpeg_and_png_mix_and_other_files_are_skipped_and_counted() {
    let dir = scratch("jpeg");
    class_folder(&dir, "cats", 4, (8, 8), [220, 120, 30], "jpg");
    class_folder(&dir, "dogs", 4, (8, 8), [30, 120, 220], "jpeg");
    rgb(8, 8, [30, 120, 220])
        .save(dir.join("dogs").join("upper.PNG"))
        .unwrap();
    std::fs::write(dir.join("dogs").join("notes.txt"), "not an image").unwrap();
    std::fs::write(dir.join("dogs").join(".DS_Store"), "hidden").unwrap();
    std::fs::write(dir.join("README"), "top-level file").unwrap();
    let l = load(&dir).unwrap();
    assert_eq!(l.split.train.len() + l.split.test.len(), 9);
    assert_eq!(l.split.train.channels, 3);
    assert!(l.description.contains("3 entries skipped"), "{}", l.description);
    // JPEG is lossy, but a solid colour comes back close.
    let cat = l.split.train.labels.iter().position(|&c| c == 0).unwrap();
    let px = l.split.train.image(cat).unwrap();
    assert!(
        (px[0] as i32 - 220).abs() <= 4 && (px[64] as i32 - 120).abs() <= 4,
        "{:?}",
        &px[..3]
    );
}

#[test]
fn train_and_test_folders_are_used_as_given() {
    let dir = scratch("given");
    class_folder(&dir.join("train"), "x", 4, (4, 4), [10, 10, 10], "png");
    class_folder(&dir.join("train"), "y", 3, (4, 4), [240, 240, 240], "png");
    class_folder(&dir.join("test"), "y", 2, (4, 4), [240, 240, 240], "png");
    let l = load(&dir).unwrap();
    assert_eq!(l.split.train.class_counts(), vec![4, 3]);
    assert_eq!(l.split.test.class_counts(), vec![0, 2], "a test set may lack a class");
    assert_eq!(l.split.test.labels, vec![1, 1]);
    assert!(
        l.description.contains("from the train/ and test/ folders"),
        "{}",
        l.description
    );

    class_folder(&dir.join("test"), "z", 1, (4, 4), [0, 0, 0], "png");
    let (e, text) = err(load(&dir));
    assert!(matches!(e, InputError::SplitFolders { .. }));
    assert!(text.contains("test/z") || text.contains("test\\z"), "{text}");
    assert!(text.contains("`z` is not among the training classes"), "{text}");

    let lonely = scratch("train-only");
    class_folder(&lonely.join("train"), "x", 2, (4, 4), [0, 0, 0], "png");
    let text = err(load(&lonely)).1;
    assert!(text.contains("has a train/ folder but no test/ folder"), "{text}");
}

#[test]
fn malformed_folders_are_errors_naming_the_file_or_folder() {
    // A corrupt image: garbage bytes named .png.
    let dir = scratch("corrupt");
    class_folder(&dir, "a", 2, (4, 4), [0, 0, 0], "png");
    class_folder(&dir, "b", 2, (4, 4), [255, 255, 255], "png");
    let bad = dir.join("b").join("broken.png");
    std::fs::write(&bad, b"this is not a PNG at all").unwrap();
    let (e, text) = err(load(&dir));
    assert!(
        matches!(e, InputError::Image { ref path, .. } if path == &bad),
        "{text}"
    );
    assert!(
        text.contains("broken.png") && text.contains("unreadable image"),
        "{text}"
    );

    // A truncated PNG: a valid header, half the data.
    let png = dir.join("b").join("broken.png");
    let mut bytes = Vec::new();
    rgb(16, 16, [1, 2, 3])
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    std::fs::write(&png, &bytes[..bytes.len() / 2]).unwrap();
    let (e, text) = err(load(&dir));
    assert!(matches!(e, InputError::Image { .. }), "{text}");
    assert!(text.contains("broken.png"), "{text}");
    // A truncated JPEG.
    std::fs::remove_file(&png).unwrap();
    let mut jpg = Vec::new();
    rgb(16, 16, [1, 2, 3])
        .write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg)
        .unwrap();
    std::fs::write(dir.join("a").join("cut.jpg"), &jpg[..20]).unwrap();
    let text = err(load(&dir)).1;
    assert!(text.contains("cut.jpg") && text.contains("unreadable image"), "{text}");

    // An empty class folder, and one with no image among its files.
    let empty = scratch("empty-class");
    class_folder(&empty, "a", 2, (4, 4), [0, 0, 0], "png");
    std::fs::create_dir_all(empty.join("b")).unwrap();
    let (e, text) = err(load(&empty));
    assert!(
        matches!(e, InputError::EmptyClass { ref path } if path.ends_with("b")),
        "{text}"
    );
    assert!(text.contains("empty class"), "{text}");
    std::fs::write(empty.join("b").join("labels.csv"), "1,2").unwrap();
    assert!(matches!(err(load(&empty)).0, InputError::EmptyClass { .. }));

    // No class folders at all; a single class.
    let none = scratch("no-classes");
    std::fs::write(none.join("loose.png"), b"x").unwrap();
    let (e, text) = err(load(&none));
    assert!(matches!(e, InputError::NoClasses { .. }), "{text}");
    assert!(text.contains("no class folders"), "{text}");
    let one = scratch("one-class");
    class_folder(&one, "only", 3, (4, 4), [0, 0, 0], "png");
    let text = err(load(&one)).1;
    assert!(text.contains("only one class (`only`)"), "{text}");

    // Missing path; every class a single image (nothing to test on).
    let (e, _) = err(load(&scratch("gone").join("nothing-here")));
    assert!(matches!(e, InputError::Io { .. }));
    let single = scratch("singles");
    class_folder(&single, "a", 1, (4, 4), [0, 0, 0], "png");
    class_folder(&single, "b", 1, (4, 4), [9, 9, 9], "png");
    assert!(err(load(&single)).1.contains("too few images"));
}

// ---------------------------------------------------------------------------------------------
// CSV

/// `text` written as `data.csv` in a scratch folder; derefs to the file's path.
struct Csv {
    path: PathBuf,
    _dir: Scratch,
}

impl std::ops::Deref for Csv {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

fn csv(name: &str, text: &str) -> Csv {
    let dir = scratch(name);
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    Csv { path, _dir: dir }
}

#[test]
fn a_csv_with_header_and_string_labels_keeps_features_at_full_precision() {
    let mut text = String::from("time,width,species\n");
    for i in 0..10 {
        let species = ["virginica", "setosa"][i % 2];
        text.push_str(&format!("{},{}.25,{species}\n", 1_700_000_000.5 + i as f64, i));
    }
    let path = csv("header", &text);
    let l = load(&path).unwrap();
    let (train, test) = (&l.split.train, &l.split.test);
    assert_eq!(
        train.class_names,
        ["setosa", "virginica"],
        "labels sorted, as class indices"
    );
    assert_eq!((train.channels, train.height, train.width), (2, 1, 1), "F×1×1 samples");
    assert!(train.images.is_empty());
    assert_eq!(train.len() + test.len(), 10);
    assert_eq!(test.class_counts(), vec![1, 1]);
    // Every value as written: 1 700 000 000.5 + i is not representable in f32, and is kept.
    let mut seen: Vec<f64> = train.features.as_ref().unwrap().0.iter().step_by(2).copied().collect();
    seen.extend(test.features.as_ref().unwrap().0.iter().step_by(2));
    seen.sort_by(f64::total_cmp);
    assert_eq!(seen, (0..10).map(|i| 1_700_000_000.5 + i as f64).collect::<Vec<_>>());
    // Labels follow the rows: odd rows are setosa (class 0).
    let row_of = |t: f64| (t - 1_700_000_000.5) as usize;
    for (k, &label) in train.labels.iter().enumerate() {
        let t = train.features.as_ref().unwrap().0[2 * k];
        assert_eq!(label as usize, 1 - row_of(t) % 2);
    }
    assert!(
        l.description.contains("2 features") && l.description.contains("label column 2 (`species`)"),
        "{}",
        l.description
    );
}

#[test]
fn label_columns_numeric_labels_and_dialects() {
    // No header; numeric labels sort numerically (10 after 2).
    let path = csv("numeric", "0.5,1,10\n0.7,2,2\n0.1,3,10\n0.2,4,2\n0.3,5,1\n0.4,6,1\n");
    let l = load(&path).unwrap();
    assert_eq!(l.split.train.class_names, ["1", "2", "10"]);
    assert!(l.description.contains("label column 2"), "{}", l.description);
    // By index: the first column as label (0.5, 0.7, … are then 6 classes of one row: too few).
    let by_index = load_with(&path, |o| o.label_column = Some("1".into()));
    assert!(err(by_index).1.contains("too few rows"));

    // By name, in the middle; quotes, semicolons, CRLF and blank lines.
    let path = csv(
        "dialect",
        "\u{feff}a;\"the label\";b\r\n1;\"x\";2\r\n\r\n3;y;4\r\n5;\"x\";6\r\n7;y;8\r\n",
    );
    let l = load_with(&path, |o| o.label_column = Some("the label".into())).unwrap();
    assert_eq!(l.split.train.class_names, ["x", "y"]);
    assert_eq!(l.split.train.channels, 2);
    let mut all: Vec<f64> = l.split.train.features.clone().unwrap().0;
    all.extend(&l.split.test.features.clone().unwrap().0);
    all.sort_by(f64::total_cmp);
    assert_eq!(all, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    // Tabs, and a quoted cell with a comma and an escaped quote as label.
    let path = csv(
        "tabs",
        "f1\tf2\tl\n1\t2\t\"a, \"\"b\"\"\"\n3\t4\tc\n5\t6\t\"a, \"\"b\"\"\"\n7\t8\tc\n",
    );
    let l = load(&path).unwrap();
    assert_eq!(l.split.train.class_names, ["a, \"b\"", "c"]);
}

fn csv_err(name: &str, text: &str, label: Option<&str>) -> (InputError, String) {
    let path = csv(name, text);
    err(load_with(&path, |o| o.label_column = label.map(String::from)))
}

#[test]
fn malformed_csv_files_are_errors_naming_the_file_and_line() {
    let (e, text) = csv_err("ragged", "a,b,c\n1,2,x\n3,4,y\n5,6\n7,8,x\n", None);
    assert!(
        matches!(
            e,
            InputError::Ragged {
                line: 4,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("data.csv:4: ragged row: 2 cells, but the first row has 3"),
        "{text}"
    );

    let (e, text) = csv_err("nonnum", "a,b,c\n1,2,x\n3,4,y\n5,six,x\n", None);
    assert!(matches!(e, InputError::BadCell { line: 4, .. }), "{text}");
    assert!(
        text.contains("data.csv:4: column 1 (`b`): `six` is not a finite number"),
        "{text}"
    );
    // Blank lines count: the bad cell is on line 5 of the file.
    let text = csv_err("blank", "1,2,x\n\n3,4,y\n5,6,x\n7,nan,y\n", None).1;
    assert!(
        text.contains("data.csv:5: column 1: `nan` is not a finite number"),
        "{text}"
    );
    let text = csv_err("inf", "1,2,x\n3,inf,y\n5,6,x\n7,8,y\n", None).1;
    assert!(text.contains(":2:") && text.contains("`inf`"), "{text}");
    let text = csv_err("empty-cell", "1,2,x\n3,,y\n5,6,x\n", None).1;
    assert!(
        text.contains("data.csv:2: column 1: `` is not a finite number"),
        "{text}"
    );
    let text = csv_err("empty-label", "1,2,x\n3,4,\n5,6,x\n", None).1;
    assert!(
        text.contains("data.csv:2: column 2: `` is not a label (the cell is empty)"),
        "{text}"
    );

    let (e, text) = csv_err("nolabel", "a,b,c\n1,2,x\n3,4,y\n", Some("species"));
    assert!(matches!(e, InputError::MissingLabelColumn { .. }), "{text}");
    assert!(
        text.contains("no label column `species`: the columns are `a`, `b`, `c` (or an index from 0 to 2)"),
        "{text}"
    );
    let text = csv_err("badindex", "1,2,x\n3,4,y\n", Some("3")).1;
    assert!(
        text.contains("no label column `3`: the columns are numbered 0 to 2 (no header row was detected)"),
        "{text}"
    );

    let (e, text) = csv_err("onlylabel", "label\nx\ny\n", None);
    assert!(matches!(e, InputError::NoFeatures { .. }), "{text}");
    let text = csv_err("oneclass", "1,x\n2,x\n3,x\n", None).1;
    assert!(text.contains("only one class (`x`)"), "{text}");
    let text = csv_err("headeronly", "a,b,label\n", None).1;
    assert!(text.contains("no data rows (only a header)"), "{text}");
    let text = csv_err("empty", "\n\n", None).1;
    assert!(text.contains("data.csv: no rows"), "{text}");
    let (e, text) = csv_err("quote", "1,2,x\n3,\"4,y\n", None);
    assert!(matches!(e, InputError::Quote { line: 2, .. }), "{text}");

    let latin1 = scratch("latin1");
    let path = latin1.join("data.csv");
    std::fs::write(&path, b"1,2,x\n3,4,caf\xe9\n").unwrap();
    let text = err(load(&path)).1;
    assert!(text.contains("line 2: not UTF-8 text"), "{text}");
    let mut many = String::new();
    for i in 0..300 {
        many.push_str(&format!("{i},{i}\n"));
    }
    assert!(csv_err("many", &many, None).1.contains("300 classes, at most 256"));
}

#[test]
fn stratified_splits_keep_every_class_and_are_reproducible() {
    let labels: Vec<u8> = (0..103).map(|i| (i % 4) as u8).chain([4, 4]).collect();
    let (kept, held) = split::stratified_indices(&labels, 5, 0.2, 3);
    assert_eq!(kept.len() + held.len(), labels.len());
    let count = |idx: &[usize], c: u8| idx.iter().filter(|&&i| labels[i] == c).count();
    for c in 0..4 {
        let n = count(&kept, c) + count(&held, c);
        assert_eq!(count(&held, c), split::held_out_count(n, 0.2), "class {c}");
    }
    assert_eq!(
        (count(&kept, 4), count(&held, 4)),
        (1, 1),
        "two samples: one held out, one kept"
    );
    assert_eq!(split::held_out_count(1, 0.5), 0, "a single sample is never held out");
    assert_eq!(split::held_out_count(3, 0.99), 2, "a class always keeps one");
    assert_eq!(split::stratified_indices(&labels, 5, 0.2, 3), (kept, held));
}

/// RFC 4180: a quoted cell may hold line breaks, the separator and `""` (a quote). Such a cell is
/// one cell of one row, and the line numbers of later errors still count the file's lines.
#[test]
fn quoted_cells_may_hold_line_breaks_and_quotes() {
    let text = "x,y,label\n\
                1,2,\"first\nline, \"\"two\"\"\"\n\
                3,4,plain\n\
                5,6,\"first\nline, \"\"two\"\"\"\r\n\
                7,8,plain\n\
                9,10,\"first\nline, \"\"two\"\"\"\n\
                11,12,plain\n";
    let l = load(&csv("multiline", text)).unwrap();
    assert_eq!(l.split.train.class_names, ["first\nline, \"two\"", "plain"]);
    assert_eq!(l.split.train.channels, 2);
    assert_eq!(l.split.train.len() + l.split.test.len(), 6);
    let mut all: Vec<f64> = l.split.train.features.clone().unwrap().0;
    all.extend(&l.split.test.features.clone().unwrap().0);
    all.sort_by(f64::total_cmp);
    assert_eq!(all, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    // The bad cell is on line 7 of the file, in the fifth row: the two quoted line breaks before
    // it count.
    let bad = text.replace("7,8,plain", "7,eight,plain");
    let text = csv_err("multiline-bad", &bad, None).1;
    assert!(
        text.contains("data.csv:7: column 1 (`y`): `eight` is not a finite number"),
        "{text}"
    );
}
