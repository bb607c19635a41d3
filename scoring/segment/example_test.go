package segment_test

import (
	"fmt"

	"github.com/riskflow/riskflow/scoring/segment"
)

func Example() {
	tab := segment.Default()
	for _, phone := range []string{"13812345678", "17031234567", "13491234567", "1440012345678", "16012345678"} {
		info := tab.Lookup(phone)
		fmt.Printf("%s prefix=%q class=%s carrier=%q host=%q mismatch-if-CU=%v\n",
			phone, info.Prefix, info.Class, info.Carrier, info.HostCarrier, segment.CarrierMismatch(info, "CU"))
	}
	// Output:
	// 13812345678 prefix="138" class=basic carrier="CM" host="CM" mismatch-if-CU=true
	// 17031234567 prefix="1703" class=mvno carrier="" host="CM" mismatch-if-CU=true
	// 13491234567 prefix="1349" class=satellite carrier="CT" host="CT" mismatch-if-CU=true
	// 1440012345678 prefix="1440" class=iot carrier="CM" host="CM" mismatch-if-CU=true
	// 16012345678 prefix="" class=unallocated carrier="" host="" mismatch-if-CU=false
}

func ExampleCarrierMismatch() {
	info := segment.Default().Lookup("17031234567") // a virtual operator riding China Mobile
	fmt.Println(segment.CarrierMismatch(info, "CM"))
	fmt.Println(segment.CarrierMismatch(info, "CT"))
	fmt.Println(segment.CarrierMismatch(info, "")) // the gateway did not say
	// Output:
	// false
	// true
	// false
}
