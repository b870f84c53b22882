import LlavaUHD
import Testing
import TestSupport

/// `RoIAlign` against `torchvision.ops.roi_align(aligned=False, sampling_ratio=-1,
/// spatial_scale=1)` on the cases of `Tests/Fixtures/hf/torch-resample` (made by
/// scripts/fixtures/make_hf_fixtures.py; meta.json → roi_align lists them): the Hiwin window boxes of
/// slice, overview, tall, 2x and 4x maps, and random boxes with several pooled sizes.
/// Tolerance: max|a − ref| ≤ 1e-5 · max|ref| (float rounding only).
@Suite struct RoIAlignTests {
    static let directory = Fixtures.root + "/hf/torch-resample"
    static let tolerance: Float = 1e-5

    struct Case {
        let name: String
        let channels: Int, height: Int, width: Int
        let pooledHeight: Int, pooledWidth: Int
        let map: [Float]
        let boxes: [RoIAlign.Box]
        let output: [Float]
    }

    static func cases() throws -> [Case] {
        let meta = try Fixtures.json(directory + "/meta.json")
        let list = try #require(meta["roi_align"]?["cases"]?.arrayValue)
        return try list.map { c in
            let name = try #require(c["name"]?.stringValue)
            let hw = try #require(c["map_hw"]?.arrayValue?.compactMap { $0.intValue })
            let pooled = try #require(c["pooled_hw"]?.arrayValue?.compactMap { $0.intValue })
            let channels = try #require(c["channels"]?.intValue)
            let map = try NPYArray(path: directory + "/" + (try #require(c["map"]?.stringValue)))
            let boxes = try NPYArray(path: directory + "/" + (try #require(c["box_file"]?.stringValue)))
            let output = try NPYArray(path: directory + "/" + (try #require(c["output"]?.stringValue)))
            #expect(map.shape == [channels, hw[0], hw[1]], "\(name): map shape")
            let b = boxes.floats
            let n = boxes.shape[0]
            #expect(boxes.shape == [n, 4] && output.shape == [n, channels, pooled[0], pooled[1]], "\(name): shapes")
            return Case(name: name, channels: channels, height: hw[0], width: hw[1],
                        pooledHeight: pooled[0], pooledWidth: pooled[1], map: map.floats,
                        boxes: (0..<n).map { RoIAlign.Box(x1: b[4 * $0], y1: b[4 * $0 + 1], x2: b[4 * $0 + 2], y2: b[4 * $0 + 3]) },
                        output: output.floats)
        }
    }

    /// Runs `RoIAlign` on the case (map transposed to HWC) and returns `[boxes, C, ph, pw]`.
    static func run(_ k: Case, threads: Int) throws -> [Float] {
        let plan = try RoIAlign(height: k.height, width: k.width, boxes: k.boxes,
                                pooledHeight: k.pooledHeight, pooledWidth: k.pooledWidth)
        let pixels = k.height * k.width
        var hwc = [Float](repeating: 0, count: k.map.count)
        for c in 0..<k.channels { for p in 0..<pixels { hwc[p * k.channels + c] = k.map[c * pixels + p] } }
        var out = [Float](repeating: .nan, count: plan.cellCount * k.channels)
        hwc.withUnsafeBufferPointer { m in
            out.withUnsafeMutableBufferPointer { o in
                plan.apply(m.baseAddress!, channels: k.channels, into: o.baseAddress!, threads: threads)
            }
        }
        let cellsPerBox = k.pooledHeight * k.pooledWidth
        var result = [Float](repeating: 0, count: out.count)
        for b in 0..<k.boxes.count {
            for c in 0..<k.channels {
                for cell in 0..<cellsPerBox {
                    result[(b * k.channels + c) * cellsPerBox + cell] = out[(b * cellsPerBox + cell) * k.channels + c]
                }
            }
        }
        return result
    }

    @Test func matchesTorchvision() throws {
        let all = try Self.cases()
        #expect(all.count >= 10)
        for k in all {
            let err = relativeMaxError(try Self.run(k, threads: 1), k.output)
            #expect(err <= Self.tolerance, "roi_align \(k.name): relative error \(err)")
        }
    }

    @Test func resultDoesNotDependOnThreads() throws {
        for k in try Self.cases() {
            #expect(try Self.run(k, threads: 1) == Self.run(k, threads: 2), "\(k.name)")
        }
    }

    @Test func rejectsEmptyMapsAndPooledSizes() {
        let box = RoIAlign.Box(x1: 0, y1: 0, x2: 1, y2: 1)
        #expect(throws: LlavaError.self) { try RoIAlign(height: 0, width: 3, boxes: [box], pooledHeight: 1, pooledWidth: 1) }
        #expect(throws: LlavaError.self) { try RoIAlign(height: 3, width: 3, boxes: [box], pooledHeight: 0, pooledWidth: 1) }
        #expect(throws: LlavaError.self) {
            try RoIAlign(height: 3, width: 3, boxes: [RoIAlign.Box(x1: .nan, y1: 0, x2: 1, y2: 1)], pooledHeight: 1, pooledWidth: 1)
        }
    }
}
