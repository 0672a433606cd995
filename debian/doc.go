// Package debian holds what cairn knows of Debian hosts: their facts
// (release, codename, architecture) and, later, the drivers behind the step
// kinds that change users, groups and packages.
package debian
