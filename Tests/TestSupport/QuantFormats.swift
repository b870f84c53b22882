import LlavaUHD

/// Every block format (the GGML block quantizations the library reads), for parametrised
/// kernel and loader tests.
package let blockFormats = QuantFormat.allCases.filter(\.isBlockQuantized)
