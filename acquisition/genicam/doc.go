// Package genicam reads a camera's GenICam device description and gives
// access to its features by SFNC name (Width, PixelFormat,
// AcquisitionLineRate, TriggerSelector, ...) over any transport that
// reaches the device's registers: GigE Vision, USB3 Vision, chunk data.
//
// A transport implements Port, fetches the description with FetchXML,
// parses it with Parse and connects the resulting NodeMap to its Port:
//
//	xml, err := genicam.FetchXML(port, firstURL) // from the bootstrap registers
//	m, err := genicam.Parse(xml)
//	m.Connect(port)
//	err = m.SetEnum("TriggerSelector", "LineStart")
//	err = m.SetEnum("TriggerSource", "Encoder0")
//	w, err := m.Int("Width")
//
// # Fetching the description
//
// The bootstrap registers of a device hold a URL. Only Local: URLs are read
// from the device:
//
//	Local:<file name>;<address>;<length>[?SchemaVersion=x.y.z]
//	         camera.zip   8000      1A3F       (hexadecimal, 0x optional)
//
// FetchXML reads <length> bytes at <address> in reads of at most
// MaxPortChunk bytes (a Port splits further if its protocol needs to). A
// file whose name ends in .zip is a zip archive holding the XML (the first
// member named *.xml, else the first member); anything else is the XML
// itself, possibly followed by NUL padding. Files over MaxFileSize and XML
// over MaxXMLSize are refused (ErrTooLarge), inflation included.
//
// # The node model
//
// A description is a flat list of named nodes (Group elements only
// group them). Each node is one of:
//
//	Category                   a list of features (pFeature), for listings
//	Port                       a register space; Connect/ConnectPort attach it
//	Integer, Float             a value: a constant (Value), another node
//	                           (pValue), or one per selector value
//	                           (pIndex + ValueIndexed/pValueIndexed + ValueDefault);
//	                           Min/Max/Inc as constants or nodes (pMin, pMax, pInc)
//	Enumeration + EnumEntry    an integer with named values; entries have
//	                           their own pIsAvailable/pIsImplemented
//	Boolean                    an integer that is OnValue or OffValue
//	Command                    writes CommandValue (or pCommandValue) to pValue
//	String                     an in-memory string
//	IntReg, FloatReg,          registers: Address (+ pAddress, + inline IntSwissKnife,
//	StringReg, Register,       + pIndex×Offset), Length, pPort, AccessMode,
//	MaskedIntReg, StructEntry  Endianess, Sign, Cachable, pInvalidator;
//	                           MaskedIntReg and StructReg's entries select bits
//	                           (Bit, or LSB..MSB)
//	SwissKnife, IntSwissKnife  a read-only formula over pVariables, Constants
//	                           and Expressions
//	Converter, IntConverter    a two-way formula: FormulaFrom (TO = the pValue's
//	                           value) reads, FormulaTo (FROM = the value written)
//	                           writes
//
// Every node may carry pIsImplemented, pIsAvailable, pIsLocked,
// ImposedAccessMode, pSelected (it is a selector of those features) and
// display data (DisplayName, ToolTip, Description, Visibility, Unit).
// Other elements (ConfRom, TextDesc, IntKey, SmartFeature, ...) are not
// evaluated; a reference to one fails with the reason. A register without
// pPort uses the Port named Device, else the only non-chunk port. An
// AccessMode of "R" or "W" (seen in real files) is read as RO or WO and
// listed in Problems. EnumEntry names need
// only be unique within their enumeration; a feature's name is matched
// against an entry's Symbolic, else its Name.
//
// Register bit numbers follow the standard: in a LittleEndian register bit
// 0 is the least significant bit; in a BigEndian register bit 0 is the
// most significant, so a 32-bit BigEndian register's LSB is bit 31:
//
//	BigEndian, Length 4:    bit  0 ............................. 31
//	                             MSB                             LSB
//	LittleEndian, Length 4: bit 31 ............................. 0
//
// # Evaluation
//
// Nothing is evaluated by Parse; every access walks the graph from the
// named feature down to constants and registers, under the NodeMap's lock.
// A read checks pIsImplemented and pIsAvailable and that the feature is
// not write-only; a write also checks pIsLocked, that the feature (and
// every node it writes through) is not read-only, and the value against
// Min, Max and Inc (an integer that writes into a register without its own
// Min/Max takes the register's range: its bits and Sign; a Converter's
// range is its pValue's range mapped through FormulaFrom). An Enumeration
// accepts only the values of its implemented and available entries.
// Integer features may be read as floats; a float written to an integer is
// rounded to the nearest integer first.
//
// A node reached again while it is being evaluated is a cycle and fails
// with ErrRecursion; so does a chain of references deeper than 64 nodes.
// One access may evaluate at most 16384 nodes (ErrTooLarge), which bounds
// graphs where many paths lead to the same node. Hostile descriptions
// therefore fail with an error instead of overflowing the stack or
// hanging.
//
// # Caching
//
// Register contents are cached per (Port, address, length), so every node
// that reads the same register sees the same bytes, and a register indexed
// by a selector has one entry per selector value. Cachable decides what a
// write does: WriteThrough (the default) keeps the written bytes, so the
// next read does not go to the device; WriteAround drops the entry, so the
// next read does; NoCache registers, and registers with a PollingTime (the
// device changes them by itself; this package does not poll), are read on
// every access. A write drops every cached register that overlaps the
// written bytes. Writing a node drops the caches of every register whose
// pInvalidator names it, and writing a selector drops the caches of every
// register its selected features read. Computed nodes (formulas,
// converters, Integers over registers) are not cached: they are evaluated
// from the cached registers on each access. Invalidate and Connect drop
// everything; call Invalidate when the device may have changed registers
// behind the NodeMap's back (after a reconnect, after AcquisitionStart on
// devices that update read-only status registers).
//
// # Errors
//
// Every accessor returns a *FeatureError naming the feature and the
// operation; its cause is one of the Err… sentinels (errors.Is), or the
// Port's own error, wrapped with the register, address and length:
//
//	genicam: set Width: out of range: 5000 is outside [16, 4096] (node Width)
//	genicam: set Width: locked: Width is locked now (node Width)
//	genicam: set PixelFormat: not an enumeration entry: "RGB8" is none of Mono8, ... (node PixelFormat)
//	genicam: get EncoderValue: EncoderValue: reading 8 bytes at 0x10308 through Device: link down
//
// The node named in parentheses is where the fault was found, which may be
// deeper than the feature (a register, a formula). Faults confined to one
// node (a reference to a node that does not exist, a formula that does not
// parse) do not fail Parse; they fail every access that reaches the node,
// and Problems lists them.
//
// # The formula grammar
//
// SwissKnife, IntSwissKnife, Converter and IntConverter formulas (and
// Expression elements) are parsed once by Parse and evaluated on every
// read. Operators, from the loosest binding to the tightest:
//
//	c ? a : b        conditional (right-associative; only the chosen branch is evaluated)
//	||               logical or (short-circuit)
//	&&               logical and (short-circuit)
//	|                bitwise or
//	^                bitwise exclusive or
//	&                bitwise and
//	=  <>            equal, not equal
//	<  >  <=  >=     comparisons
//	<<  >>           shifts
//	+  -             addition, subtraction
//	*  /  %          multiplication, division, remainder
//	**               power (right-associative; -2**2 is -4)
//	-  +  ~  !       unary minus, plus, bitwise not, logical not
//	( )              grouping
//
// Operands are decimal numbers (12, 1.5, 2e-3, .5), hexadecimal integers
// (0x1F), variables (the Name of a pVariable, Constant or Expression, and
// TO and FROM in converters; case-sensitive; VAR.Entry is the value of an
// entry of the enumeration VAR refers to) and the functions SGN, NEG, ABS,
// SQRT, TRUNC, FLOOR, CEIL, ROUND(x) and ROUND(x, n) (n decimals), with the
// constants E and PI (function and constant names in any case).
// Comparisons and logical operators give 1 or 0.
//
// Integer nodes (IntSwissKnife, IntConverter) compute in int64: / and %
// truncate towards zero, division by zero is an error (ErrFormula), shifts
// by 64 or more give 0 (or -1 for >> of a negative number), overflow wraps.
// An integer formula written with a fractional literal (0.1 * TO) is
// evaluated in float64 instead and its result truncated towards zero, as
// Aravis does; reading 0.1 as 0 would make such a formula useless.
// Float nodes compute in float64 with IEEE rules (x/0 is ±Inf); their
// bitwise operators and shifts work on the operands truncated to int64.
//
// # Concurrency
//
// A NodeMap serialises all access on one mutex, Port calls included, so a
// Port needs no locking of its own for calls made by one NodeMap.
package genicam
