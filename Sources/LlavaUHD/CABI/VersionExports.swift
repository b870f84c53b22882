import CLlavaUHD

/// The library release.
public let libraryVersion: StaticString = "0.1.0"
/// Must equal LUHD_ABI_VERSION in include/llavauhd.h.
public let abiVersion: UInt32 = 1

@_cdecl("luhd_abi_version")
public func luhd_abi_version() -> UInt32 { abiVersion }

@_cdecl("luhd_version")
public func luhd_version() -> UnsafePointer<CChar> {
    UnsafeRawPointer(libraryVersion.utf8Start).assumingMemoryBound(to: CChar.self)
}

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
