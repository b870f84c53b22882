//! ask: one streamed answer from libllavauhd, called from Rust through a hand-written
//! `extern "C"` block (std only, no crates). Mirrors examples/c/ask.c:
//!
//!     ask MODEL_DIR IMAGE "question" [max_new_tokens]
//!
//! It first shows that a failing call returns a status with a message (loading a directory that
//! does not exist gives LUHD_ERR_IO), then loads the model and image, and prints the answer as the
//! library streams it through the text callback.
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::io::Write;
use std::process::ExitCode;
use std::ptr;

/// The declarations of include/llavauhd.h this program uses, written out by hand.
mod ffi {
    use std::os::raw::{c_char, c_void};

    pub type Status = u32; // luhd_status: a C enum, an unsigned int on the supported ABIs
    pub const LUHD_OK: Status = 0;
    pub const LUHD_ERR_IO: Status = 2;
    pub const LUHD_ABI_VERSION: u32 = 2;

    #[repr(C)]
    pub struct Model {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct Image {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct Session {
        _private: [u8; 0],
    }

    pub type TextCallback = extern "C" fn(piece: *const c_char, length: usize, user_data: *mut c_void) -> bool;

    /// luhd_sampling_params
    #[repr(C)]
    pub struct SamplingParams {
        pub struct_size: usize,
        pub temperature: f32,
        pub top_k: i32,
        pub top_p: f32,
        pub min_p: f32,
        pub repetition_penalty: f32,
        pub penalty_last_n: i32,
        pub seed: u64,
        pub max_new_tokens: i32,
        pub stop_strings: *const *const c_char,
        pub n_stop_strings: i32,
    }

    /// luhd_chat_stats
    #[repr(C)]
    pub struct ChatStats {
        pub struct_size: usize,
        pub stop_reason: u32,
        pub n_prompt_positions: i32,
        pub n_reused_positions: i32,
        pub n_generated: i32,
        pub n_images_encoded: i32,
        pub n_images_cached: i32,
        pub image_seconds: f64,
        pub prefill_seconds: f64,
        pub decode_seconds: f64,
    }

    #[link(name = "llavauhd")]
    extern "C" {
        pub fn luhd_abi_version() -> u32;
        pub fn luhd_version_string() -> *const c_char;
        pub fn luhd_status_string(status: Status) -> *const c_char;
        pub fn luhd_last_error() -> *const c_char;
        pub fn luhd_model_load(path: *const c_char, params: *const c_void, out_model: *mut *mut Model) -> Status;
        pub fn luhd_model_free(model: *mut Model);
        pub fn luhd_image_load_file(path: *const c_char, params: *const c_void, out_image: *mut *mut Image) -> Status;
        pub fn luhd_image_free(image: *mut Image);
        pub fn luhd_session_create(model: *const Model, params: *const c_void, out_session: *mut *mut Session)
            -> Status;
        pub fn luhd_session_free(session: *mut Session);
        pub fn luhd_sampling_default_params() -> SamplingParams;
        pub fn luhd_session_chat(session: *mut Session, text: *const c_char, text_length: i64,
                                 images: *const *const Image, n_images: i32, sampling: *const SamplingParams,
                                 on_text: Option<TextCallback>, user_data: *mut c_void, out_text: *mut *mut c_char,
                                 out_text_length: *mut usize, out_stats: *mut ChatStats) -> Status;
    }
}

/// The status's name and the thread's last-error message.
fn describe(status: ffi::Status) -> String {
    unsafe {
        let name = CStr::from_ptr(ffi::luhd_status_string(status)).to_string_lossy();
        let message = CStr::from_ptr(ffi::luhd_last_error()).to_string_lossy();
        format!("{name}: {message}")
    }
}

/// The text callback: writes each piece (exactly `length` bytes) and counts the bytes.
extern "C" fn print_piece(piece: *const c_char, length: usize, user_data: *mut c_void) -> bool {
    let bytes = unsafe { std::slice::from_raw_parts(piece as *const u8, length) };
    let total = unsafe { &mut *(user_data as *mut usize) };
    *total += length;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).is_ok() && out.flush().is_ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: {} MODEL_DIR IMAGE \"question\" [max_new_tokens]", args[0]);
        return ExitCode::from(2);
    }
    let max_new_tokens: i32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(32);
    unsafe {
        if ffi::luhd_abi_version() != ffi::LUHD_ABI_VERSION {
            eprintln!("libllavauhd ABI {} is not the ABI {} this program was written for",
                      ffi::luhd_abi_version(), ffi::LUHD_ABI_VERSION);
            return ExitCode::FAILURE;
        }
        eprintln!("libllavauhd {}", CStr::from_ptr(ffi::luhd_version_string()).to_string_lossy());

        // An error status, handled: a model directory that does not exist.
        let missing = CString::new(format!("{}/does-not-exist", args[1])).unwrap();
        let mut model: *mut ffi::Model = ptr::null_mut();
        let status = ffi::luhd_model_load(missing.as_ptr(), ptr::null(), &mut model);
        if status != ffi::LUHD_ERR_IO || !model.is_null() {
            eprintln!("expected LUHD_ERR_IO for a missing directory, got {}", describe(status));
            return ExitCode::FAILURE;
        }
        eprintln!("error handled: {}", describe(status));

        let (dir, image_path, question) =
            match (CString::new(args[1].as_str()), CString::new(args[2].as_str()), CString::new(args[3].as_str())) {
                (Ok(d), Ok(i), Ok(q)) => (d, i, q),
                _ => {
                    eprintln!("arguments must not contain NUL characters");
                    return ExitCode::from(2);
                }
            };
        let status = ffi::luhd_model_load(dir.as_ptr(), ptr::null(), &mut model);
        if status != ffi::LUHD_OK {
            eprintln!("cannot load the model: {}", describe(status));
            return ExitCode::FAILURE;
        }
        let mut image: *mut ffi::Image = ptr::null_mut();
        let mut session: *mut ffi::Session = ptr::null_mut();
        let mut result = ExitCode::SUCCESS;
        let status = ffi::luhd_image_load_file(image_path.as_ptr(), ptr::null(), &mut image);
        let status = if status == ffi::LUHD_OK {
            ffi::luhd_session_create(model, ptr::null(), &mut session)
        } else {
            status
        };
        if status != ffi::LUHD_OK {
            eprintln!("{}", describe(status));
            result = ExitCode::FAILURE;
        } else {
            let mut sampling = ffi::luhd_sampling_default_params();
            sampling.max_new_tokens = max_new_tokens;
            let images = [image as *const ffi::Image];
            let mut streamed: usize = 0;
            let mut stats = ffi::ChatStats {
                struct_size: std::mem::size_of::<ffi::ChatStats>(), stop_reason: 0, n_prompt_positions: 0,
                n_reused_positions: 0, n_generated: 0, n_images_encoded: 0, n_images_cached: 0,
                image_seconds: 0.0, prefill_seconds: 0.0, decode_seconds: 0.0,
            };
            let status = ffi::luhd_session_chat(session, question.as_ptr(), question.as_bytes().len() as i64,
                                                images.as_ptr(), 1, &sampling, Some(print_piece),
                                                &mut streamed as *mut usize as *mut c_void, ptr::null_mut(),
                                                ptr::null_mut(), &mut stats);
            println!();
            if status != ffi::LUHD_OK {
                eprintln!("chat failed: {}", describe(status));
                result = ExitCode::FAILURE;
            } else {
                eprintln!("{} tokens, {} bytes streamed, {} prompt positions", stats.n_generated, streamed,
                          stats.n_prompt_positions);
                if stats.n_generated < 1 || stats.struct_size == 0 {
                    result = ExitCode::FAILURE;
                }
            }
        }
        ffi::luhd_session_free(session);
        ffi::luhd_image_free(image);
        ffi::luhd_model_free(model);
        result
    }
}
