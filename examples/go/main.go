// Command embed: libullme from Go through cgo (standard library only).
//
//	go run . [-model PATH]                   rank three documents for a query by cosine
//	go run . [-model PATH] -dump TEXTS.txt -out OUT.bin [-instruction S] [-candidate]
//	    embeds every line of TEXTS.txt, writes n*dim little-endian float32 to OUT.bin, prints "n dim".
//
// Build against the repository's header and library (make lib first); CGO_LDFLAGS may add other -L paths.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../build/lib -lullme -Wl,-rpath,${SRCDIR}/../../build/lib
#include <stdlib.h>
#include "ullme.h"
*/
import "C"

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unsafe"
)

// Error is a failed libullme call: its status and the library's message.
type Error struct {
	Status  int
	Name    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Name, e.Message) }

// check turns a status into an error; the message is thread-local in C, so the caller must be on
// the same OS thread as the failing call (main is locked to its thread in init).
func check(status C.int) error {
	if status == C.ULLME_OK {
		return nil
	}
	return &Error{int(status), C.GoString(C.ullme_status_name(status)), C.GoString(C.ullme_last_error())}
}

// Model wraps an ullme_model handle.
type Model struct {
	h   *C.ullme_model
	Dim int
}

func Load(path string) (*Model, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	p := C.ullme_model_default_params()
	var h *C.ullme_model
	if err := check(C.ullme_model_load(cpath, &p, &h)); err != nil {
		return nil, err
	}
	var info C.ullme_model_info
	if err := check(C.ullme_model_get_info(h, &info)); err != nil {
		C.ullme_model_free(h)
		return nil, err
	}
	return &Model{h: h, Dim: int(info.hidden_size)}, nil
}

func (m *Model) Close() { C.ullme_model_free(m.h); m.h = nil }

// Embed returns one L2-normalised embedding per text (query format if isQuery, else candidate format).
func (m *Model) Embed(texts []string, instruction string, isQuery bool) ([][]float32, error) {
	n := len(texts)
	if n == 0 {
		return nil, nil
	}
	ptrSize := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	ptrs := (*[1 << 28]*C.char)(C.malloc(C.size_t(n) * ptrSize))[:n:n]
	lens := (*[1 << 28]C.size_t)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.size_t(0)))))[:n:n]
	defer C.free(unsafe.Pointer(&ptrs[0]))
	defer C.free(unsafe.Pointer(&lens[0]))
	for i, t := range texts {
		ptrs[i] = (*C.char)(C.CBytes([]byte(t + "\x00"))) // explicit lengths below; NUL only for safety
		lens[i] = C.size_t(len(t))
	}
	defer func() {
		for _, p := range ptrs {
			C.free(unsafe.Pointer(p))
		}
	}()
	ep := C.ullme_embed_default_params()
	var cinstr *C.char
	if instruction != "" {
		cinstr = (*C.char)(C.CBytes([]byte(instruction)))
		defer C.free(unsafe.Pointer(cinstr))
		ep.instruction = cinstr
		ep.instruction_len = C.size_t(len(instruction))
	}
	if isQuery {
		ep.is_query = 1
	} else {
		ep.is_query = 0
	}
	out := make([]float32, n*m.Dim)
	status := C.ullme_embed(m.h, (**C.char)(unsafe.Pointer(&ptrs[0])), &lens[0], C.size_t(n), &ep,
		(*C.float)(unsafe.Pointer(&out[0])), C.size_t(len(out)), nil)
	if err := check(status); err != nil {
		return nil, err
	}
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = out[i*m.Dim : (i+1)*m.Dim]
	}
	return rows, nil
}

func defaultModel() string {
	cache := os.Getenv("ULLME_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "ullme")
	}
	return filepath.Join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
}

func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

func main() {
	model := flag.String("model", defaultModel(), "GGUF file or Hugging Face directory")
	dump := flag.String("dump", "", "embed every line of this file")
	out := flag.String("out", "", "with -dump: write n*dim float32 here")
	instruction := flag.String("instruction", "", "with -dump: instruction")
	candidate := flag.Bool("candidate", false, "with -dump: candidate format instead of query format")
	flag.Parse()
	if flag.NArg() > 0 {
		*model = flag.Arg(0)
	}
	if int(C.ullme_abi_version()) != C.ULLME_ABI_VERSION {
		fail(fmt.Errorf("libullme ABI %d, header %d", int(C.ullme_abi_version()), C.ULLME_ABI_VERSION))
	}
	m, err := Load(*model)
	if err != nil {
		fail(err)
	}
	defer m.Close()

	if *dump != "" {
		texts, err := readLines(*dump)
		if err != nil {
			fail(err)
		}
		embs, err := m.Embed(texts, *instruction, !*candidate)
		if err != nil {
			fail(err)
		}
		f, err := os.Create(*out)
		if err != nil {
			fail(err)
		}
		w := bufio.NewWriter(f)
		for _, e := range embs {
			if err := binary.Write(w, binary.LittleEndian, e); err != nil {
				fail(err)
			}
		}
		if err := w.Flush(); err != nil {
			fail(err)
		}
		f.Close()
		fmt.Printf("%d %d\n", len(texts), m.Dim)
		return
	}

	instr := "Given a question, retrieve passages that answer it"
	query := "What were lighthouses used for?"
	docs := []string{
		"Lighthouses guided ships along dangerous coasts with a bright light at night.",
		"Sourdough bread needs flour, water, salt and a lively starter.",
		"The stock market closed higher on Tuesday after a volatile session.",
	}
	q, err := m.Embed([]string{query}, instr, true)
	if err != nil {
		fail(err)
	}
	d, err := m.Embed(docs, instr, false)
	if err != nil {
		fail(err)
	}
	type hit struct {
		score float64
		doc   string
	}
	hits := make([]hit, len(docs))
	for i := range docs {
		var s float64
		for j := range d[i] {
			s += float64(q[0][j]) * float64(d[i][j])
		}
		hits[i] = hit{s, docs[i]}
	}
	sort.SliceStable(hits, func(a, b int) bool { return hits[a].score > hits[b].score })
	fmt.Printf("libullme %s from Go, %s (dim %d)\nquery: %s\n", C.GoString(C.ullme_version()), *model, m.Dim, query)
	for i, h := range hits {
		if math.IsNaN(h.score) {
			fail(fmt.Errorf("NaN score"))
		}
		fmt.Printf("%d. %.4f  %s\n", i+1, h.score, h.doc)
	}
}
