package events

// Kind describes one event code: its severity, what it means and what an operator
// should do about it.
type Kind struct {
	Code     string
	Severity string // SeverityInfo, SeverityWarning or SeverityError
	Meaning  string // what happened
	Action   string // what the operator should do; "nothing" for routine events
}

// Catalogue lists every event code a member may record. EVENTS.md is generated from
// it (go test ./internal/events -run TestEventsDoc -update); a test fails when the two
// disagree. Codes are stable: add new ones, never rename or reuse one.
var Catalogue = []Kind{
	// Members.
	{"member.started", SeverityInfo,
		"The member started and is ready: its gateway and links are listening.",
		"nothing"},
	{"member.stopped", SeverityInfo,
		"The member stopped (shutdown requested).",
		"nothing if the stop was planned; otherwise find out who stopped it and restart it"},
	{"member.unreachable", SeverityWarning,
		"A peer member does not answer on any link.",
		"check that the peer's process runs and that the network between the machines works"},
	{"member.reachable", SeverityInfo,
		"A peer member reported unreachable answers again.",
		"nothing"},

	// Links.
	{"link.redundancy_lost", SeverityWarning,
		"One of the two links to a peer is down; traffic uses the other one, without redundancy.",
		"repair the failed link (cable, switch, interface, firewall) named in the details"},
	{"link.redundancy_restored", SeverityInfo,
		"A link reported lost works again; both links to the peer are up.",
		"nothing"},
	{"link.all_down", SeverityError,
		"Both links to a peer that was reachable are down.",
		"restore connectivity to the peer: check both networks and the peer machine"},
	{"link.peer_refused", SeverityWarning,
		"A link connection was refused, in either direction: unknown member, bad certificate, name mismatch, bad header, or an incompatible protocol level (the details name both releases and levels).",
		"check the reason: a misconfigured member, an expired or wrong certificate, an intruder, or a member on a release too far apart (upgrade one protocol level at a time, UPGRADING.md)"},
	{"link.peer_gone", SeverityWarning,
		"Nothing listens at a peer's addresses any more: its connections closed and a new connect was refused on both links. Its process is gone (killed, crashed or stopped); a stalled process or a cut cable is silent and never raises this.",
		"restart the member (a supervisor should); if it was the leader, the cluster has already elected another (leader.gone)"},
	{"link.plaintext", SeverityWarning,
		"The member links run without TLS (tls.mode = \"off\"): traffic is neither encrypted nor authenticated.",
		"use only for measurements; enable TLS for production"},
	{"link.fault_injected", SeverityWarning,
		"A link fault was injected through the fault-injection API.",
		"nothing if this is a test; otherwise find out who injected it and restore the link"},
	{"process.fault_injected", SeverityWarning,
		"A process fault was injected through the fault-injection API: the member's process ends with SIGKILL, or stops (SIGSTOP) for the time given.",
		"nothing if this is a test or a drill (`ftvs drill`); otherwise find out who injected it"},
	{"disk.fault_injected", SeverityWarning,
		"A disk fault was injected through the fault-injection API: for the time given, writes that grow a file fail with no space left (full), or every fsync fails (sync). The member stops serving until its disk works again, as on a real failing disk (storage.full, storage.failed, storage.recovered).",
		"nothing if this is a test or a drill (`ftvs drill`); otherwise find out who injected it"},
	{"link.cut", SeverityInfo,
		"A link to a peer was cut by fault injection.",
		"nothing if this is a test; restore it when done"},
	{"link.uncut", SeverityInfo,
		"A link cut by fault injection was restored.",
		"nothing"},

	// Quorum.
	{"quorum.lost", SeverityError,
		"This member no longer reaches a majority of the members; the virtual server answers 503 until quorum returns.",
		"restore a second member or the network between the members"},
	{"quorum.regained", SeverityInfo,
		"This member reaches a majority of the members again; requests are served.",
		"nothing"},

	// The virtual server.
	{"vs.starting", SeverityInfo,
		"The virtual server (the guest) is being loaded and initialised.",
		"nothing"},
	{"vs.running", SeverityInfo,
		"The virtual server is initialised and serving requests.",
		"nothing"},
	{"vs.failed", SeverityError,
		"The virtual server failed and this member stopped serving it.",
		"read the error in the details and the member's log; restart the member after fixing the cause"},
	{"vs.failed_to_initialize", SeverityError,
		"The virtual server could not be started (bad module, failed init, out of resources).",
		"check the guest module and the error in the details; deploy a working guest"},
	{"vs.reset", SeverityWarning,
		"A request made the guest fail (panic, trap, out of fuel); its entry was undone and the virtual server reset to its state before it, on every CoServer.",
		"check the guest for the failure named in the details; the client got a 500"},
	{"vs.reset_failed", SeverityError,
		"Undoing a failed entry did not succeed: the virtual server could not be reset to its earlier state.",
		"this member can no longer serve; restart it so that it syncs from the other CoServer, and report the error"},

	// Redundancy of the virtual server.
	{"redundancy.lost", SeverityWarning,
		"The virtual server runs simplex: only one CoServer is up to date.",
		"bring the other CoServer back (restart it or repair its links); it syncs automatically"},
	{"redundancy.restored", SeverityInfo,
		"The virtual server runs duplex again: both CoServers are up to date.",
		"nothing"},

	// Sync of a CoServer that is behind.
	{"sync.started", SeverityInfo,
		"This CoServer started restoring a snapshot of the virtual server from its peer.",
		"nothing; follow sync.progress"},
	{"sync.progress", SeverityInfo,
		"A snapshot restore is under way; the details give bytes done and total.",
		"nothing"},
	{"sync.completed", SeverityInfo,
		"The snapshot was restored; this CoServer catches up from the log.",
		"nothing"},
	{"sync.deferred", SeverityWarning,
		"A snapshot offered by the witness was refused (the witness holds no guest state); the sync waits for a CoServer that has it.",
		"bring the other CoServer up; the sync then proceeds by itself"},

	// Certificates.
	{"cert.expiring", SeverityWarning,
		"This member's certificate expires soon (see expires and days_left in the details).",
		"run `ftvs cert rotate MEMBER` in the cluster dir and copy the new pair to the member"},

	// The witness.
	{"vs.disabled", SeverityWarning,
		"The operator disabled the virtual server on this CoServer for maintenance: it hands over leadership, never leads, and the other CoServer runs the virtual server alone (simplex).",
		"Do the maintenance (the CoServer can be stopped without a failover), then `ftvs enable --coserver N`."},
	{"vs.diverged", SeverityError,
		"The two CoServers' copies of the virtual server differ: their state hashes at a check entry (kind=state), or this CoServer's own response to a request and the leader's (kind=response). The details name the index and both hashes. Answers wait while the CoServers replay their logs to find which one diverged.",
		"nothing: the divergent CoServer is found and re-synced by itself (vs.divergent, vs.repairing). If vs.quarantined follows instead, keep the event log and the quarantined CoServer's data dir for analysis, then `ftvs sync --coserver N` and `ftvs enable --coserver N`"},
	{"vs.divergent", SeverityError,
		"The CoServer named in the details diverged by itself: its live state is not what its log makes of the state both agreed on last (a flipped bit in RAM, a perturbed input). It answers no client from now on and re-syncs from the other CoServer.",
		"nothing; if it happens again on the same machine, check its memory (ECC errors) and its hardware"},
	{"vs.quarantined", SeverityError,
		"This CoServer answers no client and never leads: its copy of the virtual server diverged and re-syncs, or a divergence could not be attributed to one CoServer (the details say why); the leader keeps serving.",
		"if it does not end by itself (vs.repairing), keep the data dir for analysis, then `ftvs sync --coserver N`; a divergence that cannot be attributed can be a nondeterministic guest or host: report it"},
	{"vs.repairing", SeverityWarning,
		"A CoServer that diverged discarded its copy of the virtual server and syncs from the other (then member.repaired).",
		"nothing"},
	{"vs.fault_injected", SeverityWarning,
		"A fault was injected into this CoServer's virtual server on purpose (POST /ftvs/v1/faults/vs: a flipped byte of guest memory, or a perturbed clock), for a test or a drill.",
		"nothing during a drill; on a production cluster, find out who did it and turn fault injection off"},
	{"vs.settings_recorded", SeverityInfo,
		"The leading CoServer recorded the settings that change what the guest computes (fuel, memory limit, largest request, interpreter) in the log: from now on every CoServer must run with these.",
		"nothing"},
	{"vs.metering_changed", SeverityInfo,
		"The virtual server's fuel meter now charges bulk memory instructions (memory.copy, memory.fill) by their length, and host functions by the bytes they move, as recorded in the log once both CoServers run a build of protocol level 3 or later: every replica switched at the same entry, its state unchanged. A guest's requests may report more fuel used than before.",
		"nothing; if a request now runs out of fuel, raise guest.fuel on every CoServer"},
	{"member.settings_refused", SeverityError,
		"This CoServer's own settings (fuel, memory limit, largest request or interpreter) differ from the cluster's, recorded in the log: it stops rather than apply entries under other settings. The details name each setting with both values.",
		"set the named settings in this member's config file (or its flags) to the cluster's values and start it again; it then catches up by itself"},
	{"vs.enabled", SeverityInfo,
		"The operator enabled the virtual server on this CoServer again; it counts as a running replica once caught up (duplex).",
		"nothing"},
	{"leader.gone", SeverityWarning,
		"The leader's process is gone (link.peer_gone): this member stands for election at once instead of waiting for the election timeout. A CoServer stands first; the witness stands only if that CoServer holds less of the log than it does (it refuses it its vote), or if no CoServer stood within 60 ms, and then hands leadership to the CoServer.",
		"restart the member that was leader; nothing is lost"},
	{"leadership.transferred", SeverityInfo,
		"Leadership moved on purpose: the operator asked for it, or a disabled CoServer handed it to the other.",
		"nothing"},
	{"witness.transfer", SeverityInfo,
		"The witness became leader and hands leadership to a CoServer.",
		"nothing"},
	{"witness.waiting", SeverityWarning,
		"The witness is leader but no CoServer answers; it keeps the log and waits.",
		"bring a CoServer back; the virtual server is not served meanwhile"},

	// The worst day: start without quorum, and members rejoining.
	{"override.started", SeverityError,
		"The operator started the virtual server on this CoServer WITHOUT QUORUM (the classic one-sided start): the other CoServer and the witness did not answer on either link. This CoServer is the only voter and serves alone (simplex); the details name the members left out and who asked.",
		"bring the other CoServer and the witness back: they find they were superseded, rejoin empty and sync from this CoServer. Make sure the other CoServer is not serving clients anywhere meanwhile"},
	{"override.refused", SeverityWarning,
		"A start without quorum was asked for and refused (the reason is in the details): usually because a peer still answers, so the cluster is not down to one member.",
		"bring the missing member back instead; the cluster recovers by itself"},
	{"override.failed", SeverityError,
		"A start without quorum was attempted and failed while rewriting the configuration; the details say why.",
		"read the error; the member keeps its log. Restart it and try again, or restore a peer"},
	{"override.cleared", SeverityInfo,
		"A member rejoined the CoServer that had started without quorum and caught up, and is a voter again: a quorum again needs two members and the override is over.",
		"nothing; the remaining members rejoin the same way when they return"},
	{"override.conflict", SeverityError,
		"A peer leads a configuration of its own while this member leads another: after a start without quorum, the other side was alive after all (cut links). Both may have accepted writes.",
		"stop the peer named in the details and start it again: it rejoins from this side, and its own copy is kept in its data dir (superseded-TIME) for inspection"},
	{"member.superseded", SeverityWarning,
		"At start this member found that the cluster went on without it (a start without quorum, or a forced sync cut short): its log is stale. It was set aside in the data dir (superseded-TIME) and the member starts empty and asks to rejoin (member.repairing).",
		"nothing; it syncs once added back. Delete the superseded-TIME dir when no longer needed"},
	{"member.rejoined", SeverityInfo,
		"The leader added a returning member back into the configuration, as a nonvoter; it now syncs from the leader, and the leader makes it a voter once it has caught up (until then a CoServer reports SYNCING).",
		"nothing"},
	{"member.removed", SeverityInfo,
		"The leader took a member that asked to rejoin (it lost or cannot trust raft state it acknowledged) out of the configuration; it adds it back at once.",
		"nothing"},
	{"member.repairing", SeverityWarning,
		"This member lost, or cannot trust, raft state it acknowledged (a damaged store set aside, an emptied data dir, a forced sync, a cluster that went on without it). It takes no part in elections until the leader has taken it out of the configuration and added it back, then syncs. No redundancy until it is done.",
		"nothing; it repairs itself. If it stays in this state, check that the other two members run and reach each other (the removal needs both)"},
	{"member.readded", SeverityInfo,
		"The leader took this member out of the configuration and added it back: it votes again (in later terms) and syncs from the leader.",
		"nothing"},
	{"member.repaired", SeverityInfo,
		"A member that was repairing holds the cluster's state again; the details say how long it took.",
		"nothing"},

	// Storage.
	{"storage.corrupt", SeverityError,
		"Damage that no crash explains was found in this member's raft state (log, stable store or snapshots). The damaged files were set aside in the data dir (corrupt-TIME, with a REASON.txt); nothing was deleted. If acknowledged entries may be gone, the member repairs itself from its peers (member.repairing).",
		"nothing for the cluster; check the disk (SMART, kernel log): corruption without a crash means failing hardware. Delete corrupt-TIME when no longer needed"},
	{"storage.full", SeverityError,
		"This member's disk is full: it stopped serving (507), handed leadership away and takes no part in elections. It serves again by itself once space returns.",
		"free space on the member's disk, or grow it"},
	{"storage.failed", SeverityError,
		"This member's disk fails (write or fsync errors): it stopped serving (503), handed leadership away and takes no part in elections. It serves again by itself once the disk takes writes.",
		"check the disk and the kernel log; replace the disk if it keeps failing"},
	{"storage.recovered", SeverityInfo,
		"This member's disk takes writes again: it serves and takes part in elections again.",
		"nothing"},
	{"sync.forced", SeverityWarning,
		"The operator asked this CoServer to re-sync (ftvs sync): it discards its copy of the virtual server and takes the leader's again. No redundancy until it is done.",
		"follow it in `ftvs status`; the cluster returns to duplex by itself"},

	// Module updates.
	{"update.rehearsed", SeverityInfo,
		"An update passed every check and the rehearsal on every running CoServer (on a copy of its live state).",
		"nothing"},
	{"update.rehearsal_failed", SeverityWarning,
		"An update's rehearsal failed on this CoServer: the new module could not take the state, trapped, or failed its health check. Nothing was changed.",
		"fix the module; the details say what failed"},
	{"update.refused", SeverityWarning,
		"An update was refused before anything changed; the details list every reason (bad module, unsupported runtime, a blocking advisory, a CoServer away, a failed rehearsal).",
		"apply each remedy `ftvs update` printed, then try again"},
	{"update.applied", SeverityInfo,
		"The virtual server switched to a new module at this index, carrying its state across; the module is on probation.",
		"nothing; `ftvs rollback` goes back if needed"},
	{"update.failed", SeverityError,
		"An update entry failed at the switch on this CoServer (the new module could not take the state): the old module keeps running, on every CoServer alike.",
		"fix the module; the rehearsal should have caught this, so check whether the state changed since"},
	{"update.probation_passed", SeverityInfo,
		"An updated module served enough entries without repeated traps: it is no longer rolled back automatically.",
		"nothing"},
	{"rollback.applied", SeverityWarning,
		"The operator rolled the virtual server back to an earlier module, carrying the current state across.",
		"nothing; find out why the newer module was rolled back"},
	{"rollback.automatic", SeverityWarning,
		"A module on probation trapped on several consecutive entries: every CoServer rolled back to the previous module at the same entry, with the state it had.",
		"look at the trapping requests (events vs.reset) and fix the module before updating again"},
	{"rollback.failed", SeverityError,
		"A rollback entry failed: the earlier module could not take the current state; the current module keeps running.",
		"keep the current module, or update to a fixed one"},
	{"rollback.refused", SeverityWarning,
		"A rollback was refused before anything changed: no earlier module, or its rehearsal failed.",
		"see the reasons `ftvs rollback` printed"},

	// The event log itself.
	{"events.dropped", SeverityWarning,
		"Events could not be recorded in the event log (write error); the details count them.",
		"check the data directory's disk (space, permissions, I/O errors)"},
}

var catalogueIndex = func() map[string]Kind {
	m := make(map[string]Kind, len(Catalogue))
	for _, k := range Catalogue {
		m[k.Code] = k
	}
	return m
}()

// Lookup returns the catalogue entry for code.
func Lookup(code string) (Kind, bool) {
	k, ok := catalogueIndex[code]
	return k, ok
}
