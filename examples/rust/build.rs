// Links libllavauhd from $LLAVAUHD_PREFIX/lib (default: the repository's build folder, `make ship`).
use std::env;
use std::path::PathBuf;

fn main() {
    let prefix = env::var("LLAVAUHD_PREFIX").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../build")
    });
    let lib = prefix.join("lib");
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=llavauhd");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rerun-if-env-changed=LLAVAUHD_PREFIX");
}
