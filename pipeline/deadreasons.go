package pipeline

// The reasons a dead letter is counted under (ScoreObserver.DeadLettered,
// DecisionArchiveStage.DeadLettered): the reason label of riskflow_dead_lettered_total.
const (
	ReasonDecode             = "decode"              // scorer: a verify.events message that is no valid event
	ReasonUnwritableRecord   = "unwritable_record"   // scorer: its score record cannot be written to risk.scores
	ReasonDecodeScoreRecord  = "decode_score_record" // archiver: a risk.scores message that is no score record
	ReasonUnstorableRecord   = "unstorable_record"   // archiver: a score record ClickHouse refuses
	ReasonDecodeDecision     = "decode_decision"     // decisions: a risk.decisions message that is no decision
	ReasonUnstorableDecision = "unstorable_decision" // decisions: a decision ClickHouse refuses
	ReasonDroppedUnwritable  = "dropped_unwritable"  // any: the dead letter itself could not be written
)

// Every reason each stage counts, so that a process can report each at 0 from its start: a
// counter that appears at its first increment hides that increment from rate() and increase().
var (
	ScoreReasons    = []string{ReasonDecode, ReasonUnwritableRecord, ReasonDroppedUnwritable}
	ArchiveReasons  = []string{ReasonDecodeScoreRecord, ReasonUnstorableRecord, ReasonDroppedUnwritable}
	DecisionReasons = []string{ReasonDecodeDecision, ReasonUnstorableDecision, ReasonDroppedUnwritable}
)
