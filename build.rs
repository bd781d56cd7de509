//! Gives the binary an rpath to the libtorch it was linked against, so it starts without
//! LD_LIBRARY_PATH. It is emitted as RUNPATH, so an LD_LIBRARY_PATH set by the user still wins.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
