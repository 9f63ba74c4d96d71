//! Image folders: one subfolder per class, its name the class name, holding PNG and JPEG files —
//! either directly (`PATH/cat/*.png`, then a seeded stratified split makes the test set) or
//! under `PATH/train/` and `PATH/test/`.
//!
//! - Classes are the subfolders' names in sorted order; files are read in sorted order.
//! - Files ending in `.png`, `.jpg` or `.jpeg` (any case) are images, decoded by their content;
//!   other files and hidden entries are skipped and counted in the description; nested folders
//!   inside a class folder are skipped too.
//! - Channels (`--channels`): 1 (grey, the image crate's luma weights) or 3 (RGB). By default 3
//!   when any image has colour (a pixel whose red, green and blue differ), else 1. Transparency
//!   is dropped.
//! - Size (`--image-size`): every image is resized (stretched, triangle filter) to the chosen
//!   size; by default the images keep their size when they all have the same one, and otherwise
//!   become 28×28 (grey) or 32×32 (colour).
//!
//! An image that does not decode, a class folder without images, a folder without class folders
//! and mismatched `train/`/`test/` folders are [`InputError`]s naming the file or folder.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader};

use super::input::{InputError, InputOptions, Loaded, split_account};
use super::{Dataset, Split, split};

/// The classes of one folder: (name, image files), sorted by name; and how many files were skipped.
struct Listing {
    classes: Vec<(String, Vec<PathBuf>)>,
    skipped: usize,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

fn hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// A folder entry: name, path, and whether it is a folder.
type Entry = (String, PathBuf, bool);

/// Sorted entries of `dir`, hidden ones left out (and counted).
fn entries(dir: &Path) -> Result<(Vec<Entry>, usize), InputError> {
    let read = std::fs::read_dir(dir).map_err(|e| InputError::io(dir, e))?;
    let (mut out, mut skipped) = (Vec::new(), 0);
    for entry in read {
        let entry = entry.map_err(|e| InputError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if hidden(&name) {
            skipped += 1;
            continue;
        }
        // Follows symbolic links, as a user pointing at a folder of links expects.
        let is_dir = std::fs::metadata(&path).map_err(|e| InputError::io(&path, e))?.is_dir();
        out.push((name, path, is_dir));
    }
    out.sort();
    Ok((out, skipped))
}

fn list_classes(dir: &Path) -> Result<Listing, InputError> {
    let (top, mut skipped) = entries(dir)?;
    let mut classes = Vec::new();
    for (name, path, is_dir) in top {
        if !is_dir {
            skipped += 1;
            continue;
        }
        let (files, hidden_files) = entries(&path)?;
        skipped += hidden_files;
        let mut images = Vec::new();
        for (_, file, is_dir) in files {
            if !is_dir && is_image(&file) {
                images.push(file);
            } else {
                skipped += 1;
            }
        }
        if images.is_empty() {
            return Err(InputError::EmptyClass { path });
        }
        classes.push((name, images));
    }
    if classes.is_empty() {
        return Err(InputError::NoClasses {
            path: dir.to_path_buf(),
        });
    }
    Ok(Listing { classes, skipped })
}

/// The training classes: two at least, 256 at most (the labels are bytes).
fn check_class_count(dir: &Path, listing: &Listing) -> Result<(), InputError> {
    match listing.classes.len() {
        1 => Err(InputError::OneClass {
            path: dir.to_path_buf(),
            class: listing.classes[0].0.clone(),
        }),
        n if n > 256 => Err(InputError::TooManyClasses {
            path: dir.to_path_buf(),
            found: n,
        }),
        _ => Ok(()),
    }
}

fn image_error(path: &Path, e: impl std::fmt::Display) -> InputError {
    InputError::Image {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn reader(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, InputError> {
    ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| InputError::io(path, e))
}

/// Width, height and whether the file stores colour, from its header alone.
fn header(path: &Path) -> Result<(u32, u32, bool), InputError> {
    let decoder = reader(path)?.into_decoder().map_err(|e| image_error(path, e))?;
    let (w, h) = decoder.dimensions();
    Ok((w, h, decoder.color_type().has_color()))
}

fn decode(path: &Path) -> Result<DynamicImage, InputError> {
    reader(path)?.decode().map_err(|e| image_error(path, e))
}

/// True when some pixel's red, green and blue differ.
fn has_colour(image: &DynamicImage) -> bool {
    image.color().has_color() && image.to_rgb8().pixels().any(|p| p[0] != p[1] || p[1] != p[2])
}

/// Reads the image folder at `path` (see the module documentation).
pub fn load(path: &Path, options: &InputOptions) -> Result<Loaded, InputError> {
    let (train_dir, test_dir) = (path.join("train"), path.join("test"));
    let (has_train, has_test) = (train_dir.is_dir(), test_dir.is_dir());
    let (train_list, test_list) = match (has_train, has_test) {
        (true, true) => (list_classes(&train_dir)?, Some(list_classes(&test_dir)?)),
        (false, false) => (list_classes(path)?, None),
        (true, false) | (false, true) => {
            let (have, lack) = if has_train {
                ("train", "test")
            } else {
                ("test", "train")
            };
            return Err(InputError::SplitFolders {
                path: path.to_path_buf(),
                detail: format!(
                    "has a {have}/ folder but no {lack}/ folder: give both, or put the class folders directly in it"
                ),
            });
        }
    };
    check_class_count(if test_list.is_some() { &train_dir } else { path }, &train_list)?;
    let names: Vec<String> = train_list.classes.iter().map(|(n, _)| n.clone()).collect();
    let labelled = |listing: &Listing| -> Vec<(PathBuf, u8)> {
        let mut out = Vec::new();
        for (name, files) in &listing.classes {
            let label = names.iter().position(|n| n == name).unwrap_or(0) as u8;
            out.extend(files.iter().map(|f| (f.clone(), label)));
        }
        out
    };
    if let Some(test) = &test_list
        && let Some((name, _)) = test.classes.iter().find(|(n, _)| !names.contains(n))
    {
        return Err(InputError::SplitFolders {
            path: test_dir.join(name),
            detail: format!(
                "class `{name}` is not among the training classes (the folders of {})",
                train_dir.display()
            ),
        });
    }
    let train_files = labelled(&train_list);
    let test_files = test_list.as_ref().map(labelled).unwrap_or_default();
    let all: Vec<&PathBuf> = train_files.iter().chain(&test_files).map(|(p, _)| p).collect();

    let mut headers = Vec::with_capacity(all.len());
    for p in &all {
        headers.push(header(p)?);
    }
    let channels = match options.channels {
        Some(c) => c,
        None => {
            let mut colour = false;
            for (p, (_, _, stored_colour)) in all.iter().zip(&headers) {
                if *stored_colour && has_colour(&decode(p)?) {
                    colour = true;
                    break;
                }
            }
            if colour { 3 } else { 1 }
        }
    };
    let sizes: std::collections::BTreeSet<(u32, u32)> = headers.iter().map(|&(w, h, _)| (w, h)).collect();
    let (height, width) = match (options.image_size, sizes.len()) {
        (Some(size), _) => size,
        (None, 1) => {
            let (w, h) = *sizes.iter().next().unwrap_or(&(0, 0));
            (h as usize, w as usize)
        }
        (None, _) => {
            if channels == 1 {
                (28, 28)
            } else {
                (32, 32)
            }
        }
    };
    let resized = headers
        .iter()
        .any(|&(w, h, _)| (h as usize, w as usize) != (height, width));

    let read_set = |files: &[(PathBuf, u8)]| -> Result<Dataset, InputError> {
        let mut images = Vec::with_capacity(files.len() * channels * height * width);
        for (p, _) in files {
            let image = decode(p)?;
            let (w, h) = (width as u32, height as u32);
            if channels == 1 {
                let mut grey = image.to_luma8();
                if grey.dimensions() != (w, h) {
                    grey = image::imageops::resize(&grey, w, h, FilterType::Triangle);
                }
                images.extend_from_slice(grey.as_raw());
            } else {
                let mut rgb = image.to_rgb8();
                if rgb.dimensions() != (w, h) {
                    rgb = image::imageops::resize(&rgb, w, h, FilterType::Triangle);
                }
                for c in 0..3 {
                    images.extend(rgb.pixels().map(|px| px[c]));
                }
            }
        }
        Ok(Dataset {
            images,
            labels: files.iter().map(|(_, l)| *l).collect(),
            classes: names.len(),
            channels,
            height,
            width,
            class_names: names.clone(),
            features: None,
        })
    };
    let train = read_set(&train_files)?;
    let (split, fraction) = match test_list {
        Some(_) => (
            Split {
                train,
                test: read_set(&test_files)?,
            },
            None,
        ),
        None => (
            split::stratified(&train, options.test_fraction, options.seed),
            Some(options.test_fraction),
        ),
    };
    if split.test.is_empty() {
        return Err(InputError::Empty {
            path: path.to_path_buf(),
            detail: "too few images to hold any out for testing (every class has a single image)".into(),
        });
    }
    let skipped = train_list.skipped + test_list.as_ref().map_or(0, |l| l.skipped);
    let description = format!(
        "image folder {}: {}, {height}×{width} {}{}{}",
        path.display(),
        split_account(&split, "images", fraction),
        if channels == 1 { "grey" } else { "RGB" },
        if resized { " (resized)" } else { "" },
        if skipped > 0 {
            format!("; {skipped} entries skipped (not .png/.jpg/.jpeg, hidden, or nested folders)")
        } else {
            String::new()
        }
    );
    Ok(Loaded {
        split,
        description,
        came_split: fraction.is_none(),
    })
}
