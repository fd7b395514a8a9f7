package policy

import (
	"fmt"
	"math/bits"
	"reflect"
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// Input is what a policy condition sees: the CEL variables user, client and
// server.
type Input struct {
	User   User
	Client Client
	Server Server
}

// User is the CEL variable user: the person on whose behalf the token acts.
// It is empty for machine clients.
type User struct {
	Sub         string   // user.sub
	Email       string   // user.email
	TenantIDs   []string // user.tenantIds
	Roles       []string // user.roles
	Permissions []string // user.permissions
	Groups      []string // user.groups
}

// Client types, the values of [Client].Type.
const (
	ClientUserDelegated = "user-delegated"
	ClientMachine       = "machine"
)

// Client is the CEL variable client: the OAuth client (the agent).
type Client struct {
	ID    string // client.id
	Name  string // client.name
	Group string // client.group
	Type  string // client.type: ClientUserDelegated or ClientMachine
}

// Server is the CEL variable server: the logical MCP server the token is for.
type Server struct {
	Name   string            // server.name
	Tenant string            // server.tenant
	Labels map[string]string // server.labels
}

// The CEL object types of the three variables. Their fields are resolved by
// the provider below straight from the Go structs, without reflection.
var (
	userDef = newObjectDef("mcpgate.User", []fieldDef{
		stringField("sub", func(in *Input) string { return in.User.Sub }),
		stringField("email", func(in *Input) string { return in.User.Email }),
		listField("tenantIds", func(in *Input) []string { return in.User.TenantIDs }),
		listField("roles", func(in *Input) []string { return in.User.Roles }),
		listField("permissions", func(in *Input) []string { return in.User.Permissions }),
		listField("groups", func(in *Input) []string { return in.User.Groups }),
	})
	clientDef = newObjectDef("mcpgate.Client", []fieldDef{
		stringField("id", func(in *Input) string { return in.Client.ID }),
		stringField("name", func(in *Input) string { return in.Client.Name }),
		stringField("group", func(in *Input) string { return in.Client.Group }),
		stringField("type", func(in *Input) string { return in.Client.Type }),
	})
	serverDef = newObjectDef("mcpgate.Server", []fieldDef{
		stringField("name", func(in *Input) string { return in.Server.Name }),
		stringField("tenant", func(in *Input) string { return in.Server.Tenant }),
		mapField("labels", func(in *Input) map[string]string { return in.Server.Labels }),
	})
)

// maxFields bounds the number of fields of one object type (the size of the
// per-evaluation value cache).
const maxFields = 8

// fieldDef describes one field of a CEL object type. Exactly one of str,
// list and dict is set.
type fieldDef struct {
	name string
	typ  *types.Type
	str  func(*Input) string
	list func(*Input) []string
	dict func(*Input) map[string]string
	slot int              // index into object.cache
	ft   *types.FieldType // what the checker and planner see
}

func stringField(name string, get func(*Input) string) fieldDef {
	return fieldDef{name: name, typ: types.StringType, str: get}
}

func listField(name string, get func(*Input) []string) fieldDef {
	return fieldDef{name: name, typ: types.NewListType(types.StringType), list: get}
}

func mapField(name string, get func(*Input) map[string]string) fieldDef {
	return fieldDef{name: name, typ: types.NewMapType(types.StringType, types.StringType), dict: get}
}

// isSet reports has(obj.field): the field is not empty.
func (f *fieldDef) isSet(in *Input) bool {
	switch {
	case f.str != nil:
		return f.str(in) != ""
	case f.list != nil:
		return len(f.list(in)) > 0
	default:
		return len(f.dict(in)) > 0
	}
}

// objectDef is one CEL object type backed by part of an [Input].
type objectDef struct {
	name   string
	typ    *types.Type
	byName map[string]*fieldDef
	names  []string
}

func newObjectDef(name string, fields []fieldDef) *objectDef {
	if len(fields) > maxFields {
		panic("policy: too many fields in " + name)
	}
	d := &objectDef{
		name:   name,
		typ:    types.NewObjectType(name, traits.FieldTesterType|traits.IndexerType),
		byName: make(map[string]*fieldDef, len(fields)),
	}
	for i := range fields {
		f := &fields[i]
		f.slot = i
		f.ft = &types.FieldType{
			Type: f.typ,
			IsSet: func(target any) bool {
				o, ok := target.(*object)
				return ok && o.def == d && f.isSet(o.in)
			},
			GetFrom: func(target any) (any, error) {
				o, ok := target.(*object)
				if !ok || o.def != d {
					return nil, fmt.Errorf("no field %q on %T", f.name, target)
				}
				return o.get(f), nil
			},
		}
		d.byName[f.name] = f
		d.names = append(d.names, f.name)
	}
	return d
}

// provider adds the three object types to CEL's standard type registry.
type provider struct {
	*types.Registry
	objects map[string]*objectDef
}

func newProvider() (*provider, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	p := &provider{Registry: reg, objects: map[string]*objectDef{}}
	for _, d := range []*objectDef{userDef, clientDef, serverDef} {
		p.objects[d.name] = d
	}
	return p, nil
}

// FindStructType implements [types.Provider].
func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if d, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(d.typ), true
	}
	return p.Registry.FindStructType(name)
}

// FindStructFieldNames implements [types.Provider].
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if d, ok := p.objects[name]; ok {
		return append([]string(nil), d.names...), true
	}
	return p.Registry.FindStructFieldNames(name)
}

// FindStructFieldType implements [types.Provider].
func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if d, ok := p.objects[name]; ok {
		f, ok := d.byName[field]
		if !ok {
			return nil, false
		}
		return f.ft, true
	}
	return p.Registry.FindStructFieldType(name, field)
}

// FindIdent implements [types.Provider]: the type names are identifiers, so
// that `type(user) == mcpgate.User` type-checks.
func (p *provider) FindIdent(name string) (ref.Val, bool) {
	if d, ok := p.objects[name]; ok {
		return d.typ, true
	}
	return p.Registry.FindIdent(name)
}

// NewValue implements [types.Provider]; the policy input types cannot be
// constructed inside an expression.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.objects[name]; ok {
		return types.NewErr("%s cannot be constructed in a policy expression", name)
	}
	return p.Registry.NewValue(name, fields)
}

// object is the CEL value of one variable during one evaluation. Field values
// are converted on first use and kept, so every field allocates at most once
// per [Set.Grant], however many policies read it.
type object struct {
	def   *objectDef
	in    *Input
	cache [maxFields]ref.Val
	lists [maxFields]stringList // backing for list fields, so they do not allocate
	used  uint8                 // bit i: cache[i] (and lists[i]) is set
}

var (
	_ ref.Val                = (*object)(nil)
	_ traits.Indexer         = (*object)(nil)
	_ traits.FieldTester     = (*object)(nil)
	_ traits.Lister          = (*stringList)(nil)
	_ interpreter.Activation = (*activation)(nil)
)

func (o *object) get(f *fieldDef) ref.Val {
	if v := o.cache[f.slot]; v != nil {
		return v
	}
	var v ref.Val
	switch {
	case f.str != nil:
		v = types.String(f.str(o.in))
	case f.list != nil:
		l := &o.lists[f.slot]
		l.elems = f.list(o.in)
		v = l
	default:
		m := f.dict(o.in)
		if m == nil {
			m = map[string]string{}
		}
		v = types.NewStringStringMap(types.DefaultTypeAdapter, m)
	}
	o.cache[f.slot] = v
	o.used |= 1 << f.slot
	return v
}

// reset drops the converted values (and with them the references into the
// input), touching only the slots in use.
func (o *object) reset() {
	for u := o.used; u != 0; u &= u - 1 {
		i := bits.TrailingZeros8(u)
		o.cache[i] = nil
		o.lists[i].elems = nil
	}
	o.used = 0
}

// ConvertToNative implements [ref.Val].
func (o *object) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return nil, fmt.Errorf("%s cannot be converted to %v", o.def.name, typeDesc)
}

// ConvertToType implements [ref.Val].
func (o *object) ConvertToType(typeVal ref.Type) ref.Val {
	switch typeVal {
	case types.TypeType:
		return o.def.typ
	case o.def.typ:
		return o
	}
	return types.NewErr("type conversion error from '%s' to '%s'", o.def.name, typeVal.TypeName())
}

// Equal implements [ref.Val]: an object equals only itself.
func (o *object) Equal(other ref.Val) ref.Val {
	return types.Bool(o == other)
}

// Type implements [ref.Val].
func (o *object) Type() ref.Type { return o.def.typ }

// Value implements [ref.Val].
func (o *object) Value() any { return o }

// Get implements [traits.Indexer], used when the static type is lost (dyn).
func (o *object) Get(index ref.Val) ref.Val {
	name, ok := index.(types.String)
	if !ok {
		return types.ValOrErr(index, "no such overload")
	}
	f, ok := o.def.byName[string(name)]
	if !ok {
		return types.NewErr("no such field '%s'", string(name))
	}
	return o.get(f)
}

// IsSet implements [traits.FieldTester].
func (o *object) IsSet(field ref.Val) ref.Val {
	name, ok := field.(types.String)
	if !ok {
		return types.ValOrErr(field, "no such overload")
	}
	f, ok := o.def.byName[string(name)]
	if !ok {
		return types.NewErr("no such field '%s'", string(name))
	}
	return types.Bool(f.isSet(o.in))
}

// activation resolves the CEL variables from one [Input]. Activations are
// pooled: Grant takes one, evaluates every policy against it and puts it back.
type activation struct {
	in     Input
	user   object
	client object
	server object
}

var activations = sync.Pool{New: func() any {
	a := &activation{}
	a.user = object{def: userDef, in: &a.in}
	a.client = object{def: clientDef, in: &a.in}
	a.server = object{def: serverDef, in: &a.in}
	return a
}}

func getActivation(in *Input) *activation {
	a := activations.Get().(*activation)
	a.in = *in
	return a
}

func (a *activation) release() {
	a.in = Input{}
	a.user.reset()
	a.client.reset()
	a.server.reset()
	activations.Put(a)
}

// ResolveName implements [interpreter.Activation].
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "user":
		return &a.user, true
	case "client":
		return &a.client, true
	case "server":
		return &a.server, true
	}
	return nil, false
}

// Parent implements [interpreter.Activation].
func (a *activation) Parent() interpreter.Activation { return nil }

// stringList is a list(string) field value. It lives inside the pooled
// activation, so reading a list field does not allocate, and Contains (the
// `in` operator) compares Go strings directly. The rarer operations delegate
// to CEL's own list.
type stringList struct {
	elems []string
}

func (l *stringList) std() traits.Lister {
	return types.NewStringList(types.DefaultTypeAdapter, l.elems)
}

// Contains implements [traits.Container].
func (l *stringList) Contains(elem ref.Val) ref.Val {
	s, ok := elem.(types.String)
	if !ok {
		return l.std().Contains(elem)
	}
	for _, e := range l.elems {
		if e == string(s) {
			return types.True
		}
	}
	return types.False
}

// Size implements [traits.Sizer].
func (l *stringList) Size() ref.Val { return types.Int(len(l.elems)) }

// Get implements [traits.Indexer].
func (l *stringList) Get(index ref.Val) ref.Val { return l.std().Get(index) }

// Add implements [traits.Adder].
func (l *stringList) Add(other ref.Val) ref.Val { return l.std().Add(other) }

// Iterator implements [traits.Iterable].
func (l *stringList) Iterator() traits.Iterator { return l.std().Iterator() }

// ConvertToNative implements [ref.Val].
func (l *stringList) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return l.std().ConvertToNative(typeDesc)
}

// ConvertToType implements [ref.Val].
func (l *stringList) ConvertToType(typeVal ref.Type) ref.Val { return l.std().ConvertToType(typeVal) }

// Equal implements [ref.Val].
func (l *stringList) Equal(other ref.Val) ref.Val { return l.std().Equal(other) }

// Type implements [ref.Val].
func (l *stringList) Type() ref.Type { return types.ListType }

// Value implements [ref.Val].
func (l *stringList) Value() any { return l.elems }
