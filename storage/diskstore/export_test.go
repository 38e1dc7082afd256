package diskstore

// Fault is fault, for the tests of the classification.
var Fault = fault
