package guest_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/ftvs/ftvs/guest"
)

// A guest's handler can be tested natively: Serve runs the same request and
// response encoding as the guest's ftvs_handle export.
func Example() {
	counts := map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /count/{name}", func(w http.ResponseWriter, r *http.Request) {
		counts[r.PathValue("name")]++
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, counts[r.PathValue("name")])
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) {
		panic("something broke")
	})
	// In a guest, register the handler in init: guest.Handle(mux).

	for _, req := range []string{
		"POST /count/a HTTP/1.1\r\nHost: vs\r\n\r\n",
		"POST /count/a HTTP/1.1\r\nHost: vs\r\n\r\n",
		"GET /panic HTTP/1.1\r\nHost: vs\r\n\r\n",
	} {
		out := guest.Serve(mux, []byte(req))
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s %q\n", resp.Status, body)
	}
	fmt.Printf("%q\n", guest.Serve(mux, []byte("POST /count/b HTTP/1.1\r\n\r\n")))
	// Output:
	// 200 OK "1\n"
	// 200 OK "2\n"
	// 500 Internal Server Error "internal server error: panic: something broke\n"
	// "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n1\n"
}
