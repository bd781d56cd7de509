//! Plotting maths that the terminal and the figures share: the viridis colour map, colour-bar
//! levels and contour bands, bilinear grids and the shaded text heatmap. Plain numbers in,
//! colours and characters out: no terminal and no tensors, so `ui` and `export` both use it
//! and neither depends on the other for it.

pub mod heatmap;
