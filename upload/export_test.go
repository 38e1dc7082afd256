package upload

// WaitFor is waitFor for the tests of package upload_test.
var WaitFor = waitFor
