package model

import "testing"

func TestDefaultSpecLoads(t *testing.T) {
	s, err := Parse(DefaultFile, defaultSpec)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Variants) < 7 {
		t.Fatalf("only %d variants", len(s.Variants))
	}
}
