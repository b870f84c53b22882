// ask: one streamed answer from libllavauhd, called from Go through cgo. Mirrors examples/c/ask.c:
//
//	ask MODEL_DIR IMAGE "question" [max_new_tokens]
//
// It first shows that a failing call returns a status with a message (loading a directory that
// does not exist gives LUHD_ERR_IO), then loads the model and image, and prints the answer as the
// library streams it through the text callback.
package main

/*
#cgo LDFLAGS: -lllavauhd
#include <stdlib.h>
#include <llavauhd.h>

// The text callback is a Go function exported to C (callbacks.go); cgo cannot take the address
// of an exported Go function directly, so this C wrapper is what the library calls.
extern _Bool goOnText(char *piece, size_t length, void *user_data);
static bool on_text(const char *piece, size_t length, void *user_data) {
	return goOnText((char *)piece, length, user_data);
}
static luhd_text_callback text_callback(void) { return on_text; }
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/cgo"
	"strconv"
	"unsafe"
)

// statusError is a failed call: its status and the thread's last-error message.
type statusError struct {
	status  C.luhd_status
	message string
}

func (e *statusError) Error() string {
	return C.GoString(C.luhd_status_string(e.status)) + ": " + e.message
}

// check turns a status into an error carrying luhd_last_error(). cgo runs a C call on the
// calling goroutine's thread, and the message is read right after it, on the same thread.
func check(status C.luhd_status) error {
	if status == C.LUHD_OK {
		return nil
	}
	return &statusError{status, C.GoString(C.luhd_last_error())}
}

// answer collects what the text callback streamed.
type answer struct {
	bytes int
}

func run(args []string) error {
	if C.luhd_abi_version() != C.LUHD_ABI_VERSION {
		return fmt.Errorf("libllavauhd ABI %d is not the header's %d", C.luhd_abi_version(), C.LUHD_ABI_VERSION)
	}
	fmt.Fprintf(os.Stderr, "libllavauhd %s\n", C.GoString(C.luhd_version_string()))
	maxNewTokens := 32
	if len(args) > 4 {
		n, err := strconv.Atoi(args[4])
		if err != nil {
			return err
		}
		maxNewTokens = n
	}

	// An error status, handled: a model directory that does not exist.
	missing := C.CString(args[1] + "/does-not-exist")
	defer C.free(unsafe.Pointer(missing))
	var model *C.luhd_model
	err := check(C.luhd_model_load(missing, nil, &model))
	if se, ok := err.(*statusError); !ok || se.status != C.LUHD_ERR_IO || model != nil {
		return fmt.Errorf("expected LUHD_ERR_IO for a missing directory, got %v", err)
	}
	fmt.Fprintf(os.Stderr, "error handled: %v\n", err)

	dir, imagePath := C.CString(args[1]), C.CString(args[2])
	defer C.free(unsafe.Pointer(dir))
	defer C.free(unsafe.Pointer(imagePath))
	if err := check(C.luhd_model_load(dir, nil, &model)); err != nil {
		return fmt.Errorf("cannot load the model: %w", err)
	}
	defer C.luhd_model_free(model)
	var image *C.luhd_image
	if err := check(C.luhd_image_load_file(imagePath, nil, &image)); err != nil {
		return err
	}
	defer C.luhd_image_free(image)
	var session *C.luhd_session
	if err := check(C.luhd_session_create(model, nil, &session)); err != nil {
		return err
	}
	defer C.luhd_session_free(session)

	sampling := C.luhd_sampling_default_params()
	sampling.max_new_tokens = C.int32_t(maxNewTokens)
	// The image array is C memory: cgo forbids passing Go memory that holds C pointers.
	images := (**C.luhd_image)(C.malloc(C.size_t(unsafe.Sizeof(image))))
	defer C.free(unsafe.Pointer(images))
	*images = image
	question := C.CString(args[3])
	defer C.free(unsafe.Pointer(question))
	streamed := &answer{}
	handle := cgo.NewHandle(streamed) // a Go value C can hold and hand back to the callback
	defer handle.Delete()
	stats := C.luhd_chat_stats{struct_size: C.size_t(unsafe.Sizeof(C.luhd_chat_stats{}))}
	status := C.luhd_session_chat(session, question, C.int64_t(len(args[3])),
		(**C.luhd_image)(unsafe.Pointer(images)), 1, &sampling, C.text_callback(),
		unsafe.Pointer(&handle), nil, nil, &stats)
	fmt.Println()
	if err := check(status); err != nil {
		return fmt.Errorf("chat failed: %w", err)
	}
	fmt.Fprintf(os.Stderr, "%d tokens, %d bytes streamed, %d prompt positions\n", stats.n_generated,
		streamed.bytes, stats.n_prompt_positions)
	if stats.n_generated < 1 {
		return fmt.Errorf("no answer tokens")
	}
	return nil
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintf(os.Stderr, "usage: %s MODEL_DIR IMAGE \"question\" [max_new_tokens]\n", os.Args[0])
		os.Exit(2)
	}
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
