import CLlavaUHD

/// A C abort callback and its user data, callable from the compute threads.
struct CAbort: @unchecked Sendable {
    let callback: luhd_abort_callback
    let userData: UnsafeMutableRawPointer?
    func callAsFunction() -> Bool { callback(userData) }
}

@_cdecl("luhd_image_default_options")
public func luhd_image_default_options() -> luhd_image_options {
    let d = SlicingOptions()
    return luhd_image_options(struct_size: MemoryLayout<luhd_image_options>.size,
                              preresize_long_side: Int32(d.preresizeLongSide), max_slices: Int32(d.maxSlices),
                              abort_callback: nil, abort_user_data: nil)
}

/// Slicing options and abort callback from a C options struct (nil: defaults).
func imageOptions(_ p: UnsafePointer<luhd_image_options>?) throws(LlavaError) -> (SlicingOptions, CAbort?) {
    let o = try readParams(p, defaults: luhd_image_default_options(), name: "options")
    return (try slicingOptions(o), o.abort_callback.map { CAbort(callback: $0, userData: o.abort_user_data) })
}

func slicingOptions(_ o: luhd_image_options) throws(LlavaError) -> SlicingOptions {
    guard o.max_slices >= 1, o.max_slices <= LUHD_MAX_SLICES else {
        throw LlavaError(.invalidArgument, "max_slices \(o.max_slices) is outside 1...\(LUHD_MAX_SLICES)")
    }
    guard o.preresize_long_side >= 0 else {
        throw LlavaError(.invalidArgument, "preresize_long_side \(o.preresize_long_side) is negative")
    }
    let options = SlicingOptions(preresizeLongSide: Int(o.preresize_long_side), maxSlices: Int(o.max_slices))
    try options.validate()
    return options
}

@_cdecl("luhd_image_plan")
public func luhd_image_plan(_ model: OpaquePointer?, _ image: OpaquePointer?, _ options: UnsafePointer<luhd_image_options>?,
                            _ out: UnsafeMutablePointer<luhd_plan>?) -> luhd_status {
    cCall("luhd_image_plan") { () throws(LlavaError) in
        let m = try object(model, as: ModelHandle.self, "model").model
        let img = try object(image, as: ImageHandle.self, "image").image
        let out = try nonNull(out, "out")
        let given = try outputStructSize(out.pointee.struct_size, "out", "luhd_plan")
        let (slicing, _) = try imageOptions(options)
        let layout = try m.requireVision(for: "luhd_image_plan").config.imageTokenLayout
        let plan = try m.plan(for: img, options: slicing)
        var p = luhd_plan()
        p.struct_size = given
        p.image_width = Int32(plan.inputSize.width)
        p.image_height = Int32(plan.inputSize.height)
        p.resized_width = Int32(plan.resizedSize.width)
        p.resized_height = Int32(plan.resizedSize.height)
        p.grid_columns = Int32(plan.grid?.columns ?? 0)
        p.grid_rows = Int32(plan.grid?.rows ?? 0)
        p.slice_width = Int32(plan.sliceSize?.width ?? 0)
        p.slice_height = Int32(plan.sliceSize?.height ?? 0)
        p.refine_width = Int32(plan.refineSize?.width ?? 0)
        p.refine_height = Int32(plan.refineSize?.height ?? 0)
        p.overview_width = Int32(plan.overviewSize.width)
        p.overview_height = Int32(plan.overviewSize.height)
        p.n_views = Int32(plan.views.count)
        p.n_image_tokens = Int32(plan.imagePositions(layout: layout))
        p.overview_separator = layout == .stitchedGrid ? plan.overviewSeparatorID ?? 0 : 0
        withUnsafeMutableBytes(of: &p.separators) { raw in
            let seps = raw.bindMemory(to: Int32.self)
            for (i, id) in plan.separatorIDs.prefix(seps.count).enumerated() { seps[i] = id }
        }
        writeOutputStruct(p, to: out, size: given)
    }
}

/// Builds a C tensor list (one malloc'ed block per array) from Swift arrays.
func makeTensorList(_ items: [(values: [Float], shape: [Int], view: Int, level: Int, used: Bool)])
    -> UnsafeMutablePointer<luhd_tensor_list> {
    let list = UnsafeMutablePointer<luhd_tensor_list>.allocate(capacity: 1)
    let tensors = UnsafeMutablePointer<luhd_tensor>.allocate(capacity: max(1, items.count))
    for (i, item) in items.enumerated() {
        let data = UnsafeMutablePointer<Float>.allocate(capacity: max(1, item.values.count))
        item.values.withUnsafeBufferPointer { if let b = $0.baseAddress { data.initialize(from: b, count: $0.count) } }
        var t = luhd_tensor()
        t.data = data
        t.n_dims = Int32(item.shape.count)
        withUnsafeMutableBytes(of: &t.shape) { raw in
            let s = raw.bindMemory(to: Int64.self)
            for (d, n) in item.shape.prefix(4).enumerated() { s[d] = Int64(n) }
        }
        t.view = Int32(item.view)
        t.level = Int32(item.level)
        t.used_by_projector = item.used ? 1 : 0
        (tensors + i).initialize(to: t)
    }
    list.initialize(to: luhd_tensor_list(n_tensors: Int32(items.count), tensors: tensors))
    return list
}

@_cdecl("luhd_tensor_list_free")
public func luhd_tensor_list_free(_ list: UnsafeMutablePointer<luhd_tensor_list>?) {
    guard let list else { return }
    let l = list.pointee
    for i in 0..<Int(l.n_tensors) { l.tensors[i].data?.deallocate() }
    l.tensors?.deallocate()
    list.deallocate()
}

/// Shared body of the stage exports: arguments checked, model/image/options resolved.
private func stage(_ name: StaticString, _ model: OpaquePointer?, _ image: OpaquePointer?,
                   _ options: UnsafePointer<luhd_image_options>?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?,
                   _ body: (LlavaModel, RGBImage, SlicingOptions, ComputeContext) throws(LlavaError)
                       -> [(values: [Float], shape: [Int], view: Int, level: Int, used: Bool)]) -> luhd_status {
    cCall(name) { () throws(LlavaError) in
        let m = try object(model, as: ModelHandle.self, "model").model
        let img = try object(image, as: ImageHandle.self, "image").image
        let out = try nonNull(out, "out")
        let (slicing, abort) = try imageOptions(options)
        let context = m.computeContext(shouldAbort: abort.map { a in { a() } })
        out.pointee = makeTensorList(try body(m, img, slicing, context))
    }
}

@_cdecl("luhd_image_pixels")
public func luhd_image_pixels(_ model: OpaquePointer?, _ image: OpaquePointer?, _ options: UnsafePointer<luhd_image_options>?,
                              _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?) -> luhd_status {
    stage("luhd_image_pixels", model, image, options, out) { (m, img, slicing, context) throws(LlavaError) in
        try m.pixels(of: img, options: slicing, context: context).views.enumerated().map {
            ($1.values, [3, $1.height, $1.width], $0, 0, false)
        }
    }
}

@_cdecl("luhd_vision_features")
public func luhd_vision_features(_ model: OpaquePointer?, _ image: OpaquePointer?, _ options: UnsafePointer<luhd_image_options>?,
                                 _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?) -> luhd_status {
    stage("luhd_vision_features", model, image, options, out) { (m, img, slicing, context) throws(LlavaError) in
        try m.visionFeatures(of: img, options: slicing, context: context).features.enumerated().map {
            ($1.values, [$1.patchCount, $1.channels], $0, 0, false)
        }
    }
}

@_cdecl("luhd_image_pyramid")
public func luhd_image_pyramid(_ model: OpaquePointer?, _ image: OpaquePointer?, _ options: UnsafePointer<luhd_image_options>?,
                               _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?) -> luhd_status {
    stage("luhd_image_pyramid", model, image, options, out) { (m, img, slicing, context) throws(LlavaError) in
        try m.pyramids(of: img, options: slicing, context: context).views.enumerated().flatMap { view, pyramid in
            pyramid.levels.map { ($0.values, [$0.channels, $0.rows, $0.columns], view, $0.scale, $0.usedByProjector) }
        }
    }
}

@_cdecl("luhd_image_embed")
public func luhd_image_embed(_ model: OpaquePointer?, _ image: OpaquePointer?, _ options: UnsafePointer<luhd_image_options>?,
                             _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?) -> luhd_status {
    stage("luhd_image_embed", model, image, options, out) { (m, img, slicing, context) throws(LlavaError) in
        let hidden = m.languageConfig.hiddenSize
        return try m.embed(img, options: slicing, context: context).views.enumerated().map {
            ($1, [$1.count / hidden, hidden], $0, 0, false)
        }
    }
}
