/// A heap array of Float32 that the projector derives from the weights once (folded or
/// widened matrices, Gram matrices). It can be handed to the matrix kernels as an F32
/// `TensorView`, which they use in place.
final class FloatStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    /// Zero-filled storage for `count` floats.
    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// The tensor widened to F32.
    convenience init(widening tensor: TensorView) {
        self.init(count: tensor.count)
        tensor.convert(from: 0, count: tensor.count, into: pointer)
    }

    deinit { pointer.deallocate() }

    /// A view of the storage as an F32 tensor of `shape` (whose element count must be `count`).
    func tensorView(name: String, shape: [Int]) -> TensorView {
        precondition(shape.reduce(1, *) == count, "FloatStorage: shape \(shape) does not hold \(count) values")
        return TensorView(name: name, dtype: .f32, shape: shape, data: UnsafeRawPointer(pointer), owner: self)
    }
}
