/// CLIP pixel normalisation as upstream applies it (`CLIPImageProcessor.preprocess` with
/// `do_rescale=True, do_normalize=True`, transformers 4.37): the uint8 value is multiplied by
/// 1/255 in float64 and stored as float32 (`rescale`), then `(x − mean[c]) / std[c]` is
/// computed in float32 with float32 mean and std (`normalize`). The result is laid out CHW.
///
/// Each output depends only on the byte and its channel, so a 3 × 256 table computed with
/// exactly that arithmetic gives the same floats.
package struct CLIPNormalization: Sendable, Equatable {
    /// Per-channel mean (R, G, B).
    package let mean: [Float]
    /// Per-channel standard deviation (R, G, B).
    package let std: [Float]
    /// `table[c · 256 + v]` = the normalised value of byte v in channel c.
    let table: [Float]

    /// OpenAI CLIP's statistics (`openai/clip-vit-large-patch14-336` preprocessor_config.json).
    package static let openAI = CLIPNormalization(mean: (0.48145466, 0.4578275, 0.40821073),
                                                 std: (0.26862954, 0.26130258, 0.27577711))

    package init(mean: (Float, Float, Float), std: (Float, Float, Float)) {
        self.mean = [mean.0, mean.1, mean.2]
        self.std = [std.0, std.1, std.2]
        var table = [Float](repeating: 0, count: 3 * 256)
        let rescale = 1.0 / 255.0   // transformers' default rescale_factor, applied in float64
        for c in 0..<3 {
            for v in 0..<256 {
                let x = Float(Double(v) * rescale)
                table[c * 256 + v] = (x - self.mean[c]) / self.std[c]
            }
        }
        self.table = table
    }

    /// The normalised CHW tensor of an RGB8 image.
    package func normalize(_ image: RGBImage) -> PixelTensor {
        let plane = image.width * image.height
        guard plane > 0 else { return PixelTensor(checkedWidth: image.width, height: image.height, values: []) }
        let values = [Float](unsafeUninitializedCapacity: 3 * plane) { out, n in
            image.pixels.withUnsafeBufferPointer { src in
                table.withUnsafeBufferPointer { t in
                    let r = out.baseAddress!, g = r + plane, b = g + plane
                    let tr = t.baseAddress!, tg = tr + 256, tb = tg + 256
                    for i in 0..<plane {
                        r[i] = tr[Int(src[3 * i])]
                        g[i] = tg[Int(src[3 * i + 1])]
                        b[i] = tb[Int(src[3 * i + 2])]
                    }
                }
            }
            n = 3 * plane
        }
        return PixelTensor(checkedWidth: image.width, height: image.height, values: values)
    }
}
