package testenv

// CAStacks is caStacks, for the tests.
var CAStacks = caStacks
