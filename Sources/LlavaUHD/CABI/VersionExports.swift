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

@_cdecl("luhd_status_string")
public func luhd_status_string(_ status: luhd_status) -> UnsafePointer<CChar> {
    let name: StaticString = Status(rawValue: Int32(truncatingIfNeeded: status.rawValue))?.name ?? "unknown status"
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}
