// Package segment tells what the leading digits of a mainland China mobile number say about it:
// which carrier issued the block, which network it rides, and what kind of number it is (an
// ordinary subscriber number, a virtual-operator number, a data card, IoT, satellite, a reserved
// range, or nothing allocated at all).
//
// The allocation table is data, not code. The default table is segments.tsv in this directory,
// compiled into the binary; it was filled from the public allocation tables collected in the
// project's signal catalog (SIGNALS.md, "Number segments"), which follow MIIT's published
// allocations. When a new block is allocated, the risk team edits the file (or a copy of it, read
// with LoadFile) — no Go change is needed. The file's header comment documents the columns.
//
// A Table is built once and never changed, so one Table may be used by any number of goroutines;
// to switch tables at run time, load a new one and swap the pointer (for example with
// atomic.Pointer[Table]). Lookup does not allocate.
//
// Since 2019-12-01 subscribers may keep their number when changing carrier (number portability),
// so the carrier a segment names is the one that issued the number, not necessarily the one that
// serves it now. Signals built on it, CarrierMismatch above all, must stay soft.
package segment

import "strconv"

// Carriers as they appear in the table. The first three are also the values VerifyEvent.Carrier
// takes on the wire.
const (
	CarrierMobile   = "CM"  // China Mobile
	CarrierUnicom   = "CU"  // China Unicom
	CarrierTelecom  = "CT"  // China Telecom
	CarrierBroadnet = "CBN" // China Broadnet (192)
)

// Class is the kind of number a segment holds. The zero value is Unallocated.
type Class uint8

// Classes of number segments.
const (
	Unallocated Class = iota // no row of the table covers the number
	Basic                    // ordinary 11-digit subscriber number of a carrier
	MVNO                     // virtual operator, riding a host carrier's network
	DataOnly                 // 11-digit data card (145, 147, 149)
	IoT                      // IoT numbering (13 digits; see Table.Lookup for 11-digit numbers)
	Satellite                // satellite phone range
	Special                  // emergency-communication or other reserved range
	numClasses
)

var classNames = [numClasses]string{
	Unallocated: "unallocated",
	Basic:       "basic",
	MVNO:        "mvno",
	DataOnly:    "data_only",
	IoT:         "iot",
	Satellite:   "satellite",
	Special:     "special",
}

// String returns the class as it is spelled in the table file: "basic", "mvno", "data_only",
// "iot", "satellite", "special" or "unallocated".
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// MarshalText encodes the class as its table spelling, so it reads well in JSON logs.
func (c Class) MarshalText() ([]byte, error) {
	return []byte(c.String()), nil
}

// ParseClass parses a table spelling of a class ("mvno", "data_only", …).
func ParseClass(s string) (Class, bool) {
	for c, name := range classNames {
		if s == name {
			return Class(c), true
		}
	}
	return Unallocated, false
}

// Info is what the table says about one number.
type Info struct {
	// Prefix is the table row that matched ("1703"), or "" when no row covers the number.
	Prefix string
	// Carrier is the carrier that issued the block: CM, CU, CT, CBN, or "" for virtual operators,
	// ranges held by other bodies, and unallocated numbers.
	Carrier string
	// HostCarrier is the carrier whose network the number rides: the host of a virtual operator,
	// otherwise the same as Carrier. It is what a carrier gateway would be expected to report.
	HostCarrier string
	// Class is the kind of number.
	Class Class
}

// Table maps number prefixes to Info. Build one with Load, LoadFile or Default; the zero Table
// reports every number as unallocated.
type Table struct {
	// infos[0] is the zero Info (unallocated); the index arrays point into infos.
	infos []Info
	// short and long are indexed by digits 2–5 of an 11-digit and a 13-digit number (the first
	// digit is always 1): one entry per 5-digit prefix, so a lookup is a single array read.
	short [10000]uint16
	long  [10000]uint16
	rows  int
}

// Lookup classifies a normalized phone number (bare digits, as schemas.NormalizePhone returns
// them). It does not allocate.
//
// An 11-digit number is matched against every row, the longest prefix winning. A 13-digit number
// is matched against the iot rows only: the 13-digit plan exists only for IoT, so a 13-digit
// number outside the IoT blocks is unallocated.
//
// 11-digit numbers in IoT blocks: 1410, 1440, 1441, 146 and 148 are allocated only as 13-digit
// IoT numbering, and no 11-digit subscriber numbers are issued there. Such a number is most likely
// an IoT number that lost digits on its way, or a value some tool formatted as 11 digits; it
// still falls inside a block a carrier holds for IoT. Lookup therefore reports it as IoT with that
// carrier (the iot_or_data_card signal) rather than Unallocated (the far stronger
// unallocated_segment signal); 1442x, outside every IoT block, stays unallocated. The table can
// override this per block with a non-iot row carrying the same prefix.
//
// A number that is neither 11 nor 13 digits long, does not start with 1, or holds a non-digit is
// reported as unallocated.
func (t *Table) Lookup(phone string) Info {
	var idx *[10000]uint16
	switch len(phone) {
	case 11:
		idx = &t.short
	case 13:
		idx = &t.long
	default:
		return Info{}
	}
	if phone[0] != '1' || len(t.infos) == 0 {
		return Info{}
	}
	n := 0
	for i := 1; i < len(phone); i++ {
		d := phone[i] - '0'
		if d > 9 {
			return Info{}
		}
		if i < 5 {
			n = n*10 + int(d)
		}
	}
	return t.infos[idx[n]]
}

// Len returns the number of prefix rows the table was built from.
func (t *Table) Len() int { return t.rows }

// CarrierMismatch reports whether a carrier gateway reported a carrier (non-empty) other than the
// number's host carrier. The host carrier is used, not the issuing carrier, so a virtual-operator
// number riding China Mobile that the gateway reports as CM is not a mismatch.
//
// Numbers without a host carrier (unallocated, reserved or foreign-held ranges) never mismatch:
// there is nothing to compare with, and their class is a signal of its own.
//
// This must stay a soft signal (the catalog caps it at 300): since 2019-12-01 a subscriber can
// port a number to another carrier and keep it, and a ported number is reported by its new
// carrier while its segment still names the old one.
func CarrierMismatch(info Info, reported string) bool {
	return reported != "" && info.HostCarrier != "" && reported != info.HostCarrier
}
