import CLlavaUHD
#if canImport(Glibc)
import Glibc
#endif

// The mechanics shared by every export: turning Swift errors into a status plus the
// thread's last-error message, reading versioned params structs, and handles.

/// Runs `body`, converting a thrown `LlavaError` into its status, recording the message for
/// `luhd_last_error()` and logging it at debug level.
@inline(__always)
func cCall(_ function: StaticString, _ body: () throws(LlavaError) -> Void) -> luhd_status {
    do {
        try body()
        return LUHD_OK
    } catch {
        let message = "\(function): \(error.message)"
        luhd_set_last_error(message)
        Log.debug("\(message) (status \(error.status.rawValue))")
        return luhd_status(rawValue: UInt32(error.status.rawValue))
    }
}

/// Throws `.invalidArgument` naming the parameter when `pointer` is nil.
@inline(__always)
func nonNull<T>(_ pointer: T?, _ name: StaticString) throws(LlavaError) -> T {
    guard let pointer else { throw LlavaError(.invalidArgument, "\(name) is NULL") }
    return pointer
}

/// Reads a versioned params struct: starts from `defaults` and copies the first
/// `struct_size` bytes the caller provided (fields the caller's header does not have keep
/// their defaults; fields the library does not know are ignored). `nil` means defaults.
func readParams<T>(_ pointer: UnsafePointer<T>?, defaults: T, name: StaticString) throws(LlavaError) -> T {
    guard let pointer else { return defaults }
    let given = UnsafeRawPointer(pointer).load(as: Int.self)
    guard given >= MemoryLayout<Int>.size, given <= 1 << 20 else {
        throw LlavaError(.invalidArgument, "\(name)->struct_size is \(given); set it with the default-params function")
    }
    var result = defaults
    withUnsafeMutableBytes(of: &result) { dst in
        dst.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: min(given, dst.count)))
    }
    return result
}

/// The `struct_size` a caller set in an output struct, checked to be plausible.
func outputStructSize(_ given: Int, _ name: StaticString, _ type: StaticString) throws(LlavaError) -> Int {
    guard given >= MemoryLayout<Int>.size, given <= 1 << 20 else {
        throw LlavaError(.invalidArgument, "\(name)->struct_size is \(given); set it to sizeof(\(type))")
    }
    return given
}

/// Writes the first `size` bytes of `value` (the caller's `struct_size`) to `out`, so a caller
/// built against an older, shorter struct only receives the fields it knows.
func writeOutputStruct<T>(_ value: T, to out: UnsafeMutablePointer<T>, size: Int) {
    withUnsafeBytes(of: value) { src in
        UnsafeMutableRawPointer(out).copyMemory(from: src.baseAddress!, byteCount: min(size, src.count))
    }
}

/// Reads a NUL-terminated UTF-8 string argument.
func stringArgument(_ p: UnsafePointer<CChar>?, _ name: StaticString) throws(LlavaError) -> String {
    let p = try nonNull(p, name)
    guard let s = String(validatingCString: p) else { throw LlavaError(.invalidUTF8, "\(name) is not valid UTF-8") }
    return s
}

/// Hands a Swift object to C as an opaque pointer (+1 retain); `release` balances it.
func retainedHandle<T: AnyObject>(_ object: T) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

/// The object behind a handle, without changing its retain count.
func object<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type, _ name: StaticString) throws(LlavaError) -> T {
    let h = try nonNull(handle, name)
    return Unmanaged<T>.fromOpaque(UnsafeRawPointer(h)).takeUnretainedValue()
}

/// Releases a handle made by `retainedHandle` (nil is ignored).
func releaseHandle<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type) {
    guard let handle else { return }
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).release()
}

/// A C string owned by a handle, freed with it.
final class OwnedCString: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<CChar>
    init(_ s: String) { pointer = strdupSwift(s) }
    deinit { pointer.deallocate() }
}

func strdupSwift(_ s: String) -> UnsafeMutablePointer<CChar> {
    copyCString(bytes: Array(s.utf8))
}

/// A heap copy of `bytes` with a NUL after them (bytes may contain NULs themselves), freed
/// with `deallocate` (`luhd_string_free`).
func copyCString(bytes: [UInt8]) -> UnsafeMutablePointer<CChar> {
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
    bytes.withUnsafeBytes { if let base = $0.baseAddress { UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: $0.count) } }
    p[bytes.count] = 0
    return p
}

/// A `size_t` from a C caller as an `Int`, refused (naming it) above `Int.max` (PTRDIFF_MAX):
/// such a size cannot describe memory the caller really has, and would turn negative.
func byteCount(_ value: UInt, _ name: StaticString) throws(LlavaError) -> Int {
    guard let n = Int(exactly: value) else {
        throw LlavaError(.invalidArgument, "\(name) is \(value), above PTRDIFF_MAX")
    }
    return n
}

/// A value the library reports through an `int32_t` field, refused (naming it) when it does
/// not fit rather than trapping or wrapping.
func int32Field(_ value: Int, _ name: StaticString) throws(LlavaError) -> Int32 {
    guard let v = Int32(exactly: value) else {
        throw LlavaError(.unsupported, "\(name) is \(value), which does not fit the int32_t the C interface reports it in")
    }
    return v
}

/// Reads text given as a pointer and a length in bytes, or NUL-terminated when `length` is -1
/// (with a length, NUL bytes are text). Invalid UTF-8 is refused.
func textArgument(_ p: UnsafePointer<CChar>?, length: Int64, _ name: StaticString) throws(LlavaError) -> String {
    let bytes = try textBytes(p, length: length, name)
    guard let s = String(validating: bytes, as: UTF8.self) else {
        throw LlavaError(.invalidUTF8, "\(name) is not valid UTF-8")
    }
    return s
}

/// The bytes of text given as a pointer and a length, or NUL-terminated when `length` is -1.
func textBytes(_ p: UnsafePointer<CChar>?, length: Int64, _ name: StaticString) throws(LlavaError)
    -> UnsafeRawBufferPointer {
    let p = try nonNull(p, name)
    guard length >= -1 else { throw LlavaError(.invalidArgument, "\(name) length is \(length); use -1 for NUL-terminated text") }
    guard let count = length == -1 ? strlen(p) : Int(exactly: length) else {
        throw LlavaError(.invalidArgument, "\(name) length \(length) is out of range")
    }
    return UnsafeRawBufferPointer(start: p, count: count)
}
