//! Media for sites with no network: ISO 9660 images of bundles, written deterministically
//! and read back without mounting (docs/bundle-format.md, "Disc images").

pub mod iso;

pub use iso::{EntryReader, IsoEntry, IsoError, IsoFile, IsoImage, IsoOptions};
