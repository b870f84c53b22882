import CLlavaUHD

// luhd_version_number, luhd_version_string and luhd_abi_version are defined in C
// (Sources/CLlavaUHD/version.c) from the header's macros, so the release is written in one place.

/// The library release, "MAJOR.MINOR.PATCH", as include/llavauhd.h defines it.
public let libraryVersion = String(cString: luhd_version_string())

@_cdecl("luhd_status_string")
public func luhd_status_string(_ status: luhd_status) -> UnsafePointer<CChar> {
    let name: StaticString = Status(rawValue: Int32(truncatingIfNeeded: status.rawValue))?.name ?? "unknown status"
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}
