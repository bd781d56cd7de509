//! Gives the binary an rpath to the libtorch it was linked against, so it starts without
//! LD_LIBRARY_PATH (emitted as RUNPATH, so an LD_LIBRARY_PATH set by the user still wins), and
//! compiles the C++ shims (src/model/torchscript/shim.cpp, src/model/onednn/shim.cpp and
//! direct.cpp, src/model/second_order/*.cpp) against the same libtorch's headers.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_INCLUDE");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-changed=src/model/torchscript/shim.cpp");
    println!("cargo:rerun-if-changed=src/model/onednn/shim.cpp");
    println!("cargo:rerun-if-changed=src/model/onednn/direct.cpp");
    println!("cargo:rerun-if-changed=src/model/second_order");
    println!("cargo:rerun-if-changed=src/model/onednn/unseen.h");
    println!("cargo:rerun-if-changed=src/model/shim_errors.h");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB)");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");

    // torch-sys takes headers from LIBTORCH_INCLUDE, else from beside the libraries.
    let root = std::env::var("LIBTORCH_INCLUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(&lib).join(".."));
    let include = root.join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        // The direct convolution's inner loops must unroll into registers in every profile.
        .opt_level(3)
        .file("src/model/torchscript/shim.cpp")
        .file("src/model/onednn/shim.cpp")
        .file("src/model/onednn/direct.cpp")
        .file("src/model/second_order/convolution.cpp")
        .file("src/model/second_order/elementwise.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("valleys_jit_shim");
}
