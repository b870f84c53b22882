import CLlavaUHD

/// A C abort callback and its user data, callable from the compute threads.
struct CAbort: @unchecked Sendable {
    let callback: luhd_abort_callback
    let userData: UnsafeMutableRawPointer?
    func callAsFunction() -> Bool { callback(userData) }
}

@_cdecl("luhd_slice_default_params")
public func luhd_slice_default_params() -> luhd_slice_params {
    let d = SlicingOptions()
    return luhd_slice_params(struct_size: MemoryLayout<luhd_slice_params>.size,
                             preresize_long_side: Int32(d.preresizeLongSide), max_slices: Int32(d.maxSlices))
}

/// Slicing options from a C params struct (nil: defaults).
func slicingOptions(_ p: UnsafePointer<luhd_slice_params>?) throws(LlavaError) -> SlicingOptions {
    let o = try readParams(p, defaults: luhd_slice_default_params(), name: "params")
    return try slicingOptions(preresizeLongSide: o.preresize_long_side, maxSlices: o.max_slices, prefix: "params->")
}

/// Slicing options from the two C fields (of `luhd_slice_params` or `luhd_session_params`),
/// each checked and named in the error.
func slicingOptions(preresizeLongSide: Int32, maxSlices: Int32, prefix: String) throws(LlavaError) -> SlicingOptions {
    guard maxSlices >= 1, maxSlices <= LUHD_MAX_SLICES else {
        throw LlavaError(.invalidArgument, "\(prefix)max_slices is \(maxSlices); it must be in 1...\(LUHD_MAX_SLICES)")
    }
    let options = SlicingOptions(preresizeLongSide: Int(preresizeLongSide), maxSlices: Int(maxSlices))
    do {
        try options.validate()
    } catch {
        throw LlavaError(error.status, "\(prefix)preresize_long_side is \(preresizeLongSide): \(error.message)")
    }
    return options
}

@_cdecl("luhd_image_get_slice_plan")
public func luhd_image_get_slice_plan(_ model: OpaquePointer?, _ image: OpaquePointer?,
                                      _ params: UnsafePointer<luhd_slice_params>?,
                                      _ out: UnsafeMutablePointer<luhd_slice_plan>?) -> luhd_status {
    cCall("luhd_image_get_slice_plan") { () throws(LlavaError) in
        let m = try object(model, as: ModelHandle.self, "model").model
        let img = try object(image, as: ImageHandle.self, "image").image
        let out = try nonNull(out, "out")
        let given = try outputStructSize(out.pointee.struct_size, "out", "luhd_slice_plan")
        let slicing = try slicingOptions(params)
        let layout = try m.requireVision(for: "luhd_image_get_slice_plan").config.imageTokenLayout
        let plan = try m.plan(for: img, options: slicing)
        var p = luhd_slice_plan()
        p.struct_size = given
        p.image_width = try int32Field(plan.inputSize.width, "image_width")
        p.image_height = try int32Field(plan.inputSize.height, "image_height")
        p.resized_width = try int32Field(plan.resizedSize.width, "resized_width")
        p.resized_height = try int32Field(plan.resizedSize.height, "resized_height")
        p.grid_columns = try int32Field(plan.grid?.columns ?? 0, "grid_columns")
        p.grid_rows = try int32Field(plan.grid?.rows ?? 0, "grid_rows")
        p.slice_width = try int32Field(plan.sliceSize?.width ?? 0, "slice_width")
        p.slice_height = try int32Field(plan.sliceSize?.height ?? 0, "slice_height")
        p.refine_width = try int32Field(plan.refineSize?.width ?? 0, "refine_width")
        p.refine_height = try int32Field(plan.refineSize?.height ?? 0, "refine_height")
        p.overview_width = try int32Field(plan.overviewSize.width, "overview_width")
        p.overview_height = try int32Field(plan.overviewSize.height, "overview_height")
        p.n_views = try int32Field(plan.views.count, "n_views")
        p.n_image_tokens = try int32Field(plan.imagePositions(layout: layout), "n_image_tokens")
        p.overview_separator = layout == .stitchedGrid ? plan.overviewSeparator.map { Int32(ImageTokenLayout.tokenID(of: $0)) } ?? 0 : 0
        withUnsafeMutableBytes(of: &p.separators) { raw in
            let seps = raw.bindMemory(to: Int32.self)
            for (i, kind) in plan.separators.prefix(seps.count).enumerated() { seps[i] = Int32(ImageTokenLayout.tokenID(of: kind)) }
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
                   _ params: UnsafePointer<luhd_slice_params>?, _ abort: luhd_abort_callback?,
                   _ abortUserData: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?,
                   _ body: (LlavaModel, RGBImage, SlicingOptions, ComputeContext) throws(LlavaError)
                       -> [(values: [Float], shape: [Int], view: Int, level: Int, used: Bool)]) -> luhd_status {
    cCall(name) { () throws(LlavaError) in
        let m = try object(model, as: ModelHandle.self, "model").model
        let img = try object(image, as: ImageHandle.self, "image").image
        let out = try nonNull(out, "out")
        let slicing = try slicingOptions(params)
        let abort = abort.map { CAbort(callback: $0, userData: abortUserData) }
        let context = m.computeContext(shouldAbort: abort.map { a in { a() } })
        out.pointee = makeTensorList(try body(m, img, slicing, context))
    }
}

@_cdecl("luhd_image_pixels")
public func luhd_image_pixels(_ model: OpaquePointer?, _ image: OpaquePointer?, _ params: UnsafePointer<luhd_slice_params>?,
                              _ abort: luhd_abort_callback?, _ abortUserData: UnsafeMutableRawPointer?,
                              _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?) -> luhd_status {
    stage("luhd_image_pixels", model, image, params, abort, abortUserData, out) { (m, img, slicing, context) throws(LlavaError) in
        try m.pixels(of: img, options: slicing, context: context).views.enumerated().map {
            ($1.values, [3, $1.height, $1.width], $0, 0, false)
        }
    }
}

@_cdecl("luhd_image_features")
public func luhd_image_features(_ model: OpaquePointer?, _ image: OpaquePointer?, _ params: UnsafePointer<luhd_slice_params>?,
                              _ abort: luhd_abort_callback?, _ abortUserData: UnsafeMutableRawPointer?,
                                 _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?) -> luhd_status {
    stage("luhd_image_features", model, image, params, abort, abortUserData, out) { (m, img, slicing, context) throws(LlavaError) in
        try m.visionFeatures(of: img, options: slicing, context: context).features.enumerated().map {
            ($1.values, [$1.patchCount, $1.channels], $0, 0, false)
        }
    }
}

@_cdecl("luhd_image_pyramid")
public func luhd_image_pyramid(_ model: OpaquePointer?, _ image: OpaquePointer?, _ params: UnsafePointer<luhd_slice_params>?,
                              _ abort: luhd_abort_callback?, _ abortUserData: UnsafeMutableRawPointer?,
                               _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?) -> luhd_status {
    stage("luhd_image_pyramid", model, image, params, abort, abortUserData, out) { (m, img, slicing, context) throws(LlavaError) in
        try m.pyramids(of: img, options: slicing, context: context).views.enumerated().flatMap { view, pyramid in
            pyramid.levels.map { ($0.values, [$0.channels, $0.rows, $0.columns], view, $0.scale, $0.usedByProjector) }
        }
    }
}

@_cdecl("luhd_image_embed")
public func luhd_image_embed(_ model: OpaquePointer?, _ image: OpaquePointer?, _ params: UnsafePointer<luhd_slice_params>?,
                              _ abort: luhd_abort_callback?, _ abortUserData: UnsafeMutableRawPointer?,
                             _ out: UnsafeMutablePointer<UnsafeMutablePointer<luhd_tensor_list>?>?) -> luhd_status {
    stage("luhd_image_embed", model, image, params, abort, abortUserData, out) { (m, img, slicing, context) throws(LlavaError) in
        let hidden = m.languageConfig.hiddenSize
        return try m.embed(img, options: slicing, context: context).views.enumerated().map {
            ($1, [$1.count / hidden, hidden], $0, 0, false)
        }
    }
}
