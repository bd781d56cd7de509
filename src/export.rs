//! Pictures and documents for reports: terminal screenshots (SVG and PNG, with the data behind
//! their charts as CSV), publication figures, and `valleys report`. Nothing here touches a
//! tensor or a terminal.

pub mod figure;
pub mod raster;
pub mod report;
pub mod screen;
pub mod vtk;
