package main

// #include <stddef.h>
import "C"

import (
	"os"
	"runtime/cgo"
	"unsafe"
)

// goOnText receives one piece of the answer (exactly length bytes) from the library's text
// callback and writes it out; returning false would stop the answer.
//
//export goOnText
func goOnText(piece *C.char, length C.size_t, userData unsafe.Pointer) C._Bool {
	a := (*cgo.Handle)(userData).Value().(*answer)
	bytes := C.GoBytes(unsafe.Pointer(piece), C.int(length))
	a.bytes += len(bytes)
	_, err := os.Stdout.Write(bytes)
	return C._Bool(err == nil)
}
