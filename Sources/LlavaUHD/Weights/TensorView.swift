/// A read-only view of one tensor inside a memory-mapped weight file. It borrows the bytes of
/// the mapping (no copy) and keeps the mapping alive. Shapes are row-major, outermost first, as
/// the file stores them: a Linear weight is `[out, in]`. A scalar has shape `[]` and one
/// element.
///
/// `data` has no alignment guarantee beyond what the file gives (safetensors writers pad the
/// header to 8 bytes, so tensors are normally aligned to their element size); read it with
/// `loadUnaligned` or check `isAligned` before binding it to a typed pointer.
package struct TensorView: @unchecked Sendable {
    package let name: String
    package let dtype: DType
    package let shape: [Int]
    /// The first byte of the tensor's data inside the mapping.
    package let data: UnsafeRawPointer
    /// Number of elements (1 for a scalar, 0 if any dimension is 0).
    package let count: Int
    /// Keeps the mapping alive as long as any view exists.
    let owner: AnyObject

    /// A view of `shape.reduce(1, *)` elements of `dtype` at `data`, kept alive by `owner`.
    /// The caller guarantees that the bytes exist (SafetensorsFile checks this for files).
    package init(name: String, dtype: DType, shape: [Int], data: UnsafeRawPointer, owner: AnyObject) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.data = data
        self.count = shape.reduce(1, *)
        self.owner = owner
    }

    /// Number of bytes.
    package var byteCount: Int { count * dtype.size }

    /// The tensor's bytes, borrowed from the mapping.
    package var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: data, count: byteCount) }

    /// True if `data` is aligned to the element size (so it may be bound to a typed pointer).
    package var isAligned: Bool { Int(bitPattern: data) % dtype.size == 0 }

    /// Element `i` (flat index, `0 ..< count`) converted to Float. For small tensors and
    /// scalars; kernels read `data` directly.
    package func float(at i: Int) -> Float {
        var x: Float = 0
        convertToFloat(self, from: i, count: 1, into: &x)
        return x
    }

    /// The whole tensor converted to Float (a copy). Use for small tensors (norm weights,
    /// biases, embeddings rows) and tests; large matrices are consumed in place by the kernels.
    package func floats() -> [Float] {
        guard count > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { buf, n in
            if let out = buf.baseAddress { convertToFloat(self, from: 0, count: count, into: out) }
            n = count
        }
    }

    /// Elements `[from, from + count)` (flat indices inside `0 ..< self.count`) converted to
    /// Float into `out`.
    package func convert(from: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        convertToFloat(self, from: from, count: count, into: out)
    }
}

/// Converts `count` elements of `t`, starting at flat index `from`, to Float (F8 values by
/// their IEEE-like definitions, integers by value, BOOL as 0/1).
func convertToFloat(_ t: TensorView, from: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
    let base = t.data + from * t.dtype.size
    switch t.dtype {
    case .f32:
        UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: count * 4)
    case .bf16:
        var i = 0
        while i + 16 <= count {
            let h = base.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)
            let w = SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16
            UnsafeMutableRawPointer(out + i).storeBytes(of: unsafeBitCast(w, to: SIMD16<Float>.self), as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            out[i] = Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
            i += 1
        }
    case .f16:
        var i = 0
        while i + 16 <= count {
            let h = base.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<Float16>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: SIMD16<Float>(h), as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 2, as: Float16.self)); i += 1 }
    case .f64: for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
    case .i8: for i in 0..<count { out[i] = Float(base.load(fromByteOffset: i, as: Int8.self)) }
    case .u8: for i in 0..<count { out[i] = Float(base.load(fromByteOffset: i, as: UInt8.self)) }
    case .bool: for i in 0..<count { out[i] = base.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
    case .i16: for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)) }
    case .u16: for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
    case .i32: for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
    case .u32: for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
    case .i64: for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
    case .u64: for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
    case .f8e4m3: for i in 0..<count { out[i] = float8ToFloat(base.load(fromByteOffset: i, as: UInt8.self), exponentBits: 4) }
    case .f8e5m2: for i in 0..<count { out[i] = float8ToFloat(base.load(fromByteOffset: i, as: UInt8.self), exponentBits: 5) }
    case .f8e4m3fnuz:
        for i in 0..<count { out[i] = float8FNUZToFloat(base.load(fromByteOffset: i, as: UInt8.self), exponentBits: 4) }
    case .f8e5m2fnuz:
        for i in 0..<count { out[i] = float8FNUZToFloat(base.load(fromByteOffset: i, as: UInt8.self), exponentBits: 5) }
    case .f8e8m0:
        for i in 0..<count {
            let e = base.load(fromByteOffset: i, as: UInt8.self)
            out[i] = e == 0xFF ? .nan : Float(sign: .plus, exponent: Int(e) - 127, significand: 1)
        }
    }
}

/// Decodes an 8-bit float: E4M3 (bias 7, no infinities, S.1111.111 = NaN) or E5M2 (bias 15,
/// IEEE-style infinities and NaNs). Subnormals have exponent 1 − bias.
func float8ToFloat(_ b: UInt8, exponentBits e: Int) -> Float {
    let m = 7 - e
    let sign: Float = b & 0x80 != 0 ? -1 : 1
    let exp = Int(b >> m) & ((1 << e) - 1)
    let mant = Int(b) & ((1 << m) - 1)
    let bias = (1 << (e - 1)) - 1
    if e == 4, exp == 15, mant == 7 { return .nan }
    if e == 5, exp == 31 { return mant == 0 ? sign * .infinity : .nan }
    if exp == 0 { return sign * Float(mant) * Float(sign: .plus, exponent: 1 - bias - m, significand: 1) }
    return sign * (1 + Float(mant) / Float(1 << m)) * Float(sign: .plus, exponent: exp - bias, significand: 1)
}

/// Decodes an 8-bit "FNUZ" float (E4M3 bias 8 or E5M2 bias 16): no infinities, no negative
/// zero, and the pattern 0x80 is the only NaN.
func float8FNUZToFloat(_ b: UInt8, exponentBits e: Int) -> Float {
    if b == 0x80 { return .nan }
    let m = 7 - e
    let sign: Float = b & 0x80 != 0 ? -1 : 1
    let exp = Int(b >> m) & ((1 << e) - 1)
    let mant = Int(b) & ((1 << m) - 1)
    let bias = 1 << (e - 1)
    if exp == 0 { return sign * Float(mant) * Float(sign: .plus, exponent: 1 - bias - m, significand: 1) }
    return sign * (1 + Float(mant) / Float(1 << m)) * Float(sign: .plus, exponent: exp - bias, significand: 1)
}
