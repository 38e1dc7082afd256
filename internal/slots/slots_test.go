package slots

import "testing"

func TestEachKeyHoldsAtMostItsSlots(t *testing.T) {
	p := New(2)
	r1, ok1 := p.Acquire("a")
	_, ok2 := p.Acquire("a")
	if !ok1 || !ok2 {
		t.Fatal("two slots under a cap of two were refused")
	}
	if _, ok := p.Acquire("a"); ok {
		t.Fatal("a third slot was given")
	}
	if _, ok := p.Acquire("b"); !ok {
		t.Fatal("another key was refused")
	}
	r1()
	r1() // twice is harmless
	if _, ok := p.Acquire("a"); !ok {
		t.Fatal("a released slot was not given again")
	}
	if _, ok := p.Acquire("a"); ok {
		t.Fatal("releasing twice gave back two slots")
	}
}
