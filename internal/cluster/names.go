package cluster

// The members of every cluster, by name: two CoServers and the witness. The names are
// fixed (config accepts no others), so a member's kind follows from its name (KindOf).
// This is their one home: config, node, the Manager and the CLI refer to it.
const (
	CoServer1 = "coserver1"
	CoServer2 = "coserver2"
	Witness   = "witness"
)

// KindOf is the kind of the member called name: KindWitness for the witness,
// KindCoServer for any other member.
func KindOf(name string) Kind {
	if name == Witness {
		return KindWitness
	}
	return KindCoServer
}
