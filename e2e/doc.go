// Package e2e contains end-to-end tests that run the built storagebot binary
// against Microsoft-written local peers, such as the Microsoft 365 Agents
// Playground. It has no code outside its tests.
package e2e
