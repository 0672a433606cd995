package steps

import "github.com/cairn-cm/cairn/statedir"

// ReadRecord reads the agent's record name (see WriteRecord) into v, as
// JSON, and reports whether there was one. A state directory that does not
// exist, as an Applier opened without Options.Create finds it, holds no
// record: a command that only reads records opens the state that way and
// creates nothing.
func (a *Applier) ReadRecord(name string, v any) (bool, error) {
	if a.st == nil {
		if err := statedir.CheckRecordName(name); err != nil {
			return false, err
		}
		return false, nil
	}
	return a.st.d.ReadRecord(name, v)
}

// WriteRecord stores v, as JSON, as the agent's record name: a small file
// beneath the state directory (its lifecycle state, its last runs, bad
// moves, a pin), written under the state lock as the applied journal is
// (atomically, synced). name is one or more of a-z, 0-9 and '-'. A record,
// or the directory of records, that is a link or anything but what cairn
// makes there is refused, never followed (statedir.Dir.WriteRecord).
func (a *Applier) WriteRecord(name string, v any) error {
	if a.st == nil {
		return inputErrorf("state directory %s does not exist", a.stateName())
	}
	return a.st.d.WriteRecord(name, v)
}
