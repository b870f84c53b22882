import CLlavaUHD

// luhd_version_number, luhd_version_string and luhd_abi_version are defined in C
// (Sources/CLlavaUHD/version.c) from the header's macros, so the release is written in one place.

/// The library release, "MAJOR.MINOR.PATCH", as include/llavauhd.h defines it.
public let libraryVersion = String(cString: luhd_version_string())

/// Static, NUL-terminated names for `luhd_status_string`, indexed by status code.
private let statusNames: [StaticString] = [
    "ok", "invalid argument", "I/O error", "malformed weight file", "missing tensor",
    "tensor shape or dtype mismatch", "bad model config", "unsupported model", "bad image",
    "image too large", "bad tokenizer", "invalid UTF-8", "context full", "cancelled", "out of memory",
    "buffer too small", "internal error",
]

@_cdecl("luhd_status_string")
public func luhd_status_string(_ status: luhd_status) -> UnsafePointer<CChar> {
    let name: StaticString = Int(status.rawValue) < statusNames.count ? statusNames[Int(status.rawValue)] : "unknown status"
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}
