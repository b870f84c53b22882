import FoundationEssentials
import LlavaUHD
#if canImport(Glibc)
import Glibc
#endif

/// Turns an `image_url` of a request into pixels, within the server's limits: `data:` URLs
/// (base64 PNG or JPEG) always; local files (`file://` URLs or absolute paths) only under the
/// folder given with `--image-dir`, checked after resolving symbolic links and `..`.
struct ImageSource: Sendable {
    /// The folder local images may come from (resolved), or nil when they are refused.
    let imageDirectory: String?
    /// The decoder's pixel limit (checked from the file header before any pixel is allocated).
    let limits: ImageLimits

    init(imageDirectory: String?, maxPixels: Int) throws(LlavaError) {
        if let imageDirectory {
            guard let resolved = Self.resolve(imageDirectory), directoryExists(resolved) else {
                throw LlavaError(.io, "--image-dir '\(imageDirectory)' is not a directory")
            }
            self.imageDirectory = resolved.hasSuffix("/") ? resolved : resolved + "/"
        } else {
            self.imageDirectory = nil
        }
        limits = ImageLimits(maxPixels: maxPixels)
    }

    /// The decoded image; `param` names the request field in errors.
    func load(_ url: String, param: String) throws(APIError) -> RGBImage {
        do {
            if url.hasPrefix("data:") { return try ImageDecoder.decode(try dataURLBytes(url, param: param), limits: limits) }
            let path = url.hasPrefix("file://") ? String(url.dropFirst("file://".count)) : url
            guard path.hasPrefix("/") else {
                throw APIError.invalid("\(param): only data: URLs are accepted"
                                       + (imageDirectory == nil ? "" : ", or absolute paths and file:// URLs under --image-dir"),
                                       param: param, code: "unsupported_image_url")
            }
            guard let imageDirectory else {
                throw APIError.invalid("\(param): local image files are off (start the server with --image-dir)",
                                       param: param, code: "unsupported_image_url")
            }
            guard let resolved = Self.resolve(path), resolved.hasPrefix(imageDirectory) else {
                throw APIError.invalid("\(param): '\(path)' is not a readable file under --image-dir", param: param,
                                       code: "image_unreadable")
            }
            return try ImageDecoder.decodeFile(resolved, limits: limits)
        } catch let error as APIError {
            throw error
        } catch let error as LlavaError {
            var api = APIError(error)
            api.message = "\(param): " + api.message
            api.param = param
            throw api
        } catch {
            throw APIError.invalid("\(param): \(error)", param: param)
        }
    }

    /// The bytes of `data:[<media type>][;base64],<data>` (base64 only).
    func dataURLBytes(_ url: String, param: String) throws(APIError) -> [UInt8] {
        guard let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64") else {
            throw APIError.invalid("\(param): a data: URL must be base64 ('data:image/png;base64,...')", param: param,
                                   code: "bad_image")
        }
        guard let data = Data(base64Encoded: String(url[url.index(after: comma)...])) else {
            throw APIError.invalid("\(param): the data: URL is not valid base64", param: param, code: "bad_image")
        }
        return [UInt8](data)
    }

    /// `path` with symbolic links, `.` and `..` resolved, or nil when it does not exist.
    static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
