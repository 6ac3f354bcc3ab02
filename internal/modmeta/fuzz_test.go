package modmeta

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ftvs/ftvs/internal/defaultguest"
)

// FuzzRead feeds Read arbitrary bytes: it never panics, what it accepts is valid, and
// whatever walks as a module can be stamped and read back.
func FuzzRead(f *testing.F) {
	stamped, _ := Stamp(module(typeSection, custom("name", []byte{0})), kvMeta)
	f.Add(stamped)
	f.Add(emptyModule)
	f.Add(module(custom(SectionName, []byte(`{"name":"kv","version":"1","requires_ftvs":"*","abi":1,"more":[{}]}`))))
	f.Add(module(custom(SectionName, []byte(`{"name":1}`)), custom(SectionName, nil)))
	f.Add(module(custom(SectionName, []byte(`{"name":"kv","version":"1","requires_ftvs":"*","abi":1,"reads":["GET /kv/","POST /q"]}`))))
	f.Add(module([]byte{0x00, 0x02, 0x05, 'a'}))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\xff\xff\xff\xff\x0f"))
	f.Add(defaultguest.KV[:min(len(defaultguest.KV), 512)])
	f.Fuzz(func(t *testing.T, bin []byte) {
		m, found, err := Read(bin)
		if err == nil && found {
			if verr := m.Validate(); verr != nil {
				t.Fatalf("Read returned invalid metadata %+v: %v", m, verr)
			}
		}
		if err == nil && !found && !m.Equal(Meta{}) {
			t.Fatalf("Read found nothing but returned %+v", m)
		}
		framingOK := err == nil || errors.Is(err, ErrInvalid)
		out, serr := Stamp(bin, kvMeta)
		if framingOK != (serr == nil) {
			t.Fatalf("Read error %v but Stamp error %v", err, serr)
		}
		if serr != nil {
			return
		}
		got, found, err := Read(out)
		if err != nil || !found || !got.Equal(kvMeta) {
			t.Fatalf("Read(Stamp(bin)) = %+v, %v, %v", got, found, err)
		}
		again, err := Stamp(out, kvMeta)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("restamping changed the module (err %v)", err)
		}
	})
}
