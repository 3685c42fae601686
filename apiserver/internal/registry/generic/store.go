package generic

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/coxswain/coxswain/apiserver/internal/admission"
	"github.com/coxswain/coxswain/apiserver/internal/authn"
	"github.com/coxswain/coxswain/apiserver/internal/fieldmanager"
	fastvalidation "github.com/coxswain/coxswain/apiserver/internal/registry/validation"
	"github.com/coxswain/coxswain/apiserver/internal/storage/cacher"
	"github.com/coxswain/coxswain/apiserver/internal/storage/etcd"
	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// Reserver is implemented by kinds whose objects hold unique resources
// (a Service's ClusterIP and NodePorts): keys reserved in etcd in the same
// transaction as the object's write, so nothing is ever allocated twice.
type Reserver interface {
	// Assign fills what obj needs allocated, given old (nil on create), and
	// returns the reservation keys obj holds afterwards.
	Assign(ctx context.Context, obj, old runtime.Object) ([]string, error)
	// Held returns the keys a stored object holds.
	Held(obj runtime.Object) []string
	// ReservedError turns a conflict on key into the error the client
	// sees, given the object as requested and as assigned; nil means the
	// key was chosen by Assign and the write is retried.
	ReservedError(requested, assigned runtime.Object, key string) error
}

// Deleter is implemented by kinds whose deletion is graceful (pods bound to
// a node, namespaces with finalizers): Terminate decides whether obj stays
// in storage as terminating, updating it for that.
type Deleter interface {
	Terminate(obj runtime.Object, opts *metav1.DeleteOptions, now time.Time) (stay bool)
}

// FieldTracker updates metadata.managedFields for a write by manager
// (live is nil on create).
type FieldTracker interface {
	Track(live, obj runtime.Object, manager, subresource string) runtime.Object
}

// NamespaceChecker tells whether objects may be created in a namespace.
type NamespaceChecker interface {
	CheckNamespace(ctx context.Context, ns string) error
}

// Store is the registry of one resource.
type Store struct {
	Resource   scheme.Resource
	Strategy   Strategy
	Storage    *etcd.Store
	Cache      *cacher.Cacher
	Prefix     string
	Namespaces NamespaceChecker
	Reserver   Reserver
	Deleter    Deleter
	Admission  admission.Interface
	// Fields tracks managedFields on writes whose context names a field
	// manager (the REST API's); nil tracks nothing.
	Fields    FieldTracker
	Logger    *zap.Logger
	Now       func() time.Time
	fieldKeys map[string]bool
}

// KeyPrefix is the etcd prefix of a resource: /registry/<group>/<resource>/.
func KeyPrefix(gvr schema.GroupVersionResource) string {
	g := gvr.Group
	if g == "" {
		g = "core"
	}
	return "/registry/" + g + "/" + gvr.Resource + "/"
}

// NewStore builds the store and its cacher (not started).
func NewStore(r scheme.Resource, s Strategy, st *etcd.Store, windowSize int, logger *zap.Logger) *Store {
	if logger == nil {
		logger = zap.NewNop()
	}
	store := &Store{Resource: r, Strategy: s, Storage: st, Prefix: KeyPrefix(r.GVR), Logger: logger, Now: time.Now}
	store.fieldKeys = map[string]bool{"metadata.name": true, "metadata.namespace": true}
	if zero, err := r.New(); err == nil {
		for k := range s.Fields(zero) {
			store.fieldKeys[k] = true
		}
	}
	store.Cache = cacher.New(cacher.Config{
		Resource:   r.GVR.GroupResource(),
		GVK:        r.GVK(),
		Prefix:     store.Prefix,
		Store:      st,
		Attrs:      store.attrs,
		WindowSize: windowSize,
		Logger:     logger,
	})
	return store
}

func (s *Store) attrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	f := s.Strategy.Fields(obj)
	if f == nil {
		f = fields.Set{}
	}
	f["metadata.name"] = acc.GetName()
	f["metadata.namespace"] = acc.GetNamespace()
	return labels.Set(acc.GetLabels()), f, nil
}

// Key returns the etcd key of an object.
func (s *Store) Key(ns, name string) string {
	if s.Resource.Namespaced {
		return s.Prefix + ns + "/" + name
	}
	return s.Prefix + name
}

func (s *Store) gr() schema.GroupResource { return s.Resource.GVR.GroupResource() }

func (s *Store) checkRequest(ns, name string, needName bool) error {
	if s.Resource.Namespaced && ns == "" {
		return apierrors.NewBadRequest("the server could not find the requested resource: a namespace is required for " + s.Resource.GVR.Resource)
	}
	if !s.Resource.Namespaced && ns != "" {
		return apierrors.NewNotFound(s.gr(), name)
	}
	if needName && name == "" {
		return apierrors.NewBadRequest("resource name may not be empty")
	}
	if name != "" {
		if msgs := pathSegmentErrors(name); len(msgs) > 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid resource name %q: %s", name, strings.Join(msgs, ", ")))
		}
	}
	return nil
}

func pathSegmentErrors(name string) []string {
	var out []string
	if name == "." || name == ".." {
		out = append(out, fmt.Sprintf("may not be '%s'", name))
	}
	if strings.ContainsAny(name, "/%") {
		out = append(out, "may not contain '/' or '%'")
	}
	return out
}

func (s *Store) decode(kv etcd.KV) (runtime.Object, error) {
	obj, err := etcd.Decode(kv.Value, kv.ModRevision)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	obj.GetObjectKind().SetGroupVersionKind(s.Resource.GVK())
	return obj, nil
}

// Get reads one object; resourceVersion "" reads etcd, any other value the
// cache at least that fresh.
func (s *Store) Get(ctx context.Context, ns, name, rv string) (runtime.Object, error) {
	if err := s.checkRequest(ns, name, true); err != nil {
		return nil, err
	}
	key := s.Key(ns, name)
	if rv != "" {
		min, err := etcd.ParseResourceVersion(rv)
		if err != nil {
			return nil, err
		}
		e, ok, err := s.Cache.Get(ctx, key, min)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, apierrors.NewNotFound(s.gr(), name)
		}
		obj, err := e.Object()
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		return obj, nil
	}
	kv, ok, err := s.Storage.Get(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierrors.NewNotFound(s.gr(), name)
	}
	return s.decode(kv)
}

const generateNameChars = "bcdfghjklmnpqrstvwxz2456789"

func generateName(base string) string {
	const maxGeneratedNameLength = 63 - 5
	if len(base) > maxGeneratedNameLength {
		base = base[:maxGeneratedNameLength]
	}
	b := make([]byte, 5)
	for i := range b {
		b[i] = generateNameChars[rand.IntN(len(generateNameChars))]
	}
	return base + string(b)
}

func (s *Store) invalid(name string, errs field.ErrorList) error {
	return apierrors.NewInvalid(s.Resource.GVK().GroupKind(), name, errs)
}

func (s *Store) objectAccessor(obj runtime.Object) (metav1.Object, error) {
	if obj == nil {
		return nil, apierrors.NewBadRequest("no object was provided")
	}
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 || gvks[0] != s.Resource.GVK() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is of kind %T, not %s", obj, s.Resource.GVK()))
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return acc, nil
}

// Create stores a new object. dryRun runs everything but the write.
func (s *Store) Create(ctx context.Context, ns string, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	out, _, err := s.CreateEncoded(ctx, ns, obj, dryRun)
	return out, err
}

// hint tells the watch cache the attributes of what was just written.
func (s *Store) hint(key string, rev int64, obj runtime.Object) {
	lbls, flds, err := s.attrs(obj)
	if err != nil {
		return
	}
	if len(lbls) > 0 {
		lbls = maps.Clone(lbls)
	}
	s.Cache.Hint(key, rev, lbls, flds)
}

// CreateEncoded is Create that also returns the created object in the
// Kubernetes protobuf encoding (nil for a dry run), made from the stored
// bytes without encoding the object again.
func (s *Store) CreateEncoded(ctx context.Context, ns string, obj runtime.Object, dryRun bool) (runtime.Object, []byte, error) {
	acc, err := s.objectAccessor(obj)
	if err != nil {
		return nil, nil, err
	}
	if s.Resource.Namespaced {
		if acc.GetNamespace() == "" {
			acc.SetNamespace(ns)
		} else if ns != "" && acc.GetNamespace() != ns {
			return nil, nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		ns = acc.GetNamespace()
	} else {
		acc.SetNamespace("")
		ns = ""
	}
	if err := s.checkRequest(ns, "", false); err != nil {
		return nil, nil, err
	}
	generated := acc.GetName() == "" && acc.GetGenerateName() != ""
	if generated {
		acc.SetName(generateName(acc.GetGenerateName()))
	}
	now := metav1.NewTime(s.Now().Truncate(time.Second))
	acc.SetUID(types.UID(uuid.NewUUID()))
	acc.SetCreationTimestamp(now)
	acc.SetResourceVersion("")
	acc.SetDeletionTimestamp(nil)
	acc.SetDeletionGracePeriodSeconds(nil)
	acc.SetSelfLink("")
	if s.Resource.HasSubresource("status") {
		acc.SetGeneration(1)
	} else {
		acc.SetGeneration(0)
	}
	s.Strategy.Default(obj)
	s.Strategy.PrepareForCreate(ctx, obj)

	if err := s.admit(ctx, admission.Create, "", ns, acc.GetName(), obj, nil, dryRun); err != nil {
		return nil, nil, err
	}
	if mgr, ok := fieldmanager.ManagerFrom(ctx); ok && s.Fields != nil {
		obj = s.Fields.Track(nil, obj, mgr, "")
		acc, _ = meta.Accessor(obj)
	}
	errs := fastvalidation.ValidateObjectMetaAccessor(acc, s.Resource.Namespaced, s.Strategy.NameValidator(), field.NewPath("metadata"))
	errs = append(errs, s.Strategy.Validate(ctx, obj)...)
	if len(errs) > 0 {
		return nil, nil, s.invalid(acc.GetName(), errs)
	}
	if s.Resource.Namespaced && s.Namespaces != nil {
		if err := s.Namespaces.CheckNamespace(ctx, ns); err != nil {
			return nil, nil, err
		}
	}
	var requested runtime.Object
	if s.Reserver != nil {
		requested = obj.DeepCopyObject()
	}
	for attempt := 0; ; attempt++ {
		var reserve []string
		if s.Reserver != nil {
			obj = requested.DeepCopyObject()
			acc, _ = meta.Accessor(obj)
			if reserve, err = s.Reserver.Assign(ctx, obj, nil); err != nil {
				return nil, nil, err
			}
		}
		if dryRun {
			return obj, nil, nil
		}
		raw, err := etcd.Encode(s.Resource.GVK(), obj)
		if err != nil {
			return nil, nil, apierrors.NewInternalError(err)
		}
		key := s.Key(ns, acc.GetName())
		rev, err := s.Storage.Create(ctx, key, raw, reserve)
		if err == nil {
			if err := etcd.SetResourceVersion(obj, rev); err != nil {
				return nil, nil, apierrors.NewInternalError(err)
			}
			s.hint(key, rev, obj)
			withRV, err := etcd.WithResourceVersion(raw, rev)
			if err != nil {
				return nil, nil, apierrors.NewInternalError(err)
			}
			return obj, withRV, nil
		}
		var reserved *etcd.ErrReserved
		switch {
		case etcd.IsKeyExists(err) && generated && attempt < 8:
			acc.SetName(generateName(acc.GetGenerateName()))
			if requested != nil {
				if racc, err := meta.Accessor(requested); err == nil {
					racc.SetName(acc.GetName())
				}
			}
		case etcd.IsKeyExists(err):
			return nil, nil, apierrors.NewAlreadyExists(s.gr(), acc.GetName())
		case errors.As(err, &reserved) && s.Reserver != nil:
			if rerr := s.Reserver.ReservedError(requested, obj, reserved.Key); rerr != nil || attempt >= 16 {
				if rerr == nil {
					rerr = apierrors.NewConflict(s.gr(), acc.GetName(), err)
				}
				return nil, nil, rerr
			}
		case apierrors.IsConflict(err) && attempt < 16:
		default:
			return nil, nil, err
		}
	}
}

// UpdateFunc computes the new object from the current one.
type UpdateFunc func(cur runtime.Object) (runtime.Object, error)

// update is the compare-and-swap loop every write of an existing object
// goes through: read, compute, validate, write if unchanged since the read.
func (s *Store) update(ctx context.Context, ns, name string, mode UpdateMode, dryRun bool, fn UpdateFunc) (runtime.Object, error) {
	if err := s.checkRequest(ns, name, true); err != nil {
		return nil, err
	}
	key := s.Key(ns, name)
	// The first attempt starts from the watch cache's copy, saving an etcd
	// read, as upstream's GuaranteedUpdate does with its cached object: the
	// compare-and-swap on its revision catches a stale copy. Anything but a
	// successful write from the cached copy (a conflict, an error, nothing
	// to write, a dry run) is decided again from etcd.
	cached := s.Cache != nil && s.Cache.Ready()
	for attempt := 0; ; attempt++ {
		fromCache := cached && attempt == 0
		out, retry, err := s.tryUpdate(ctx, key, ns, name, mode, dryRun, fn, attempt, fromCache)
		if fromCache && (retry || err != nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !retry {
			return out, nil
		}
	}
}

// tryUpdate is one read-modify-write attempt; retry asks for another.
func (s *Store) tryUpdate(ctx context.Context, key, ns, name string, mode UpdateMode, dryRun bool, fn UpdateFunc, attempt int, fromCache bool) (out runtime.Object, retry bool, err error) {
	status := mode == StatusUpdate
	kv, ok, err := s.current(ctx, key, fromCache)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		if fromCache {
			return nil, true, nil
		}
		return nil, false, apierrors.NewNotFound(s.gr(), name)
	}
	cur, err := s.decode(kv)
	if err != nil {
		return nil, false, err
	}
	obj, err := fn(cur.DeepCopyObject())
	if err != nil {
		return nil, false, err
	}
	var requested runtime.Object
	if s.Reserver != nil && !status {
		requested = obj.DeepCopyObject()
	}
	acc, err := s.objectAccessor(obj)
	if err != nil {
		return nil, false, err
	}
	curAcc, _ := meta.Accessor(cur)
	if acc.GetName() != "" && acc.GetName() != name {
		return nil, false, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", acc.GetName(), name))
	}
	if s.Resource.Namespaced && acc.GetNamespace() != "" && acc.GetNamespace() != ns {
		return nil, false, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if rv := acc.GetResourceVersion(); rv != "" && rv != curAcc.GetResourceVersion() {
		return nil, false, apierrors.NewConflict(s.gr(), name, errors.New(conflictMsg))
	}
	acc.SetName(name)
	acc.SetNamespace(curAcc.GetNamespace())
	acc.SetResourceVersion(curAcc.GetResourceVersion())
	// System fields are the server's.
	acc.SetUID(curAcc.GetUID())
	acc.SetCreationTimestamp(curAcc.GetCreationTimestamp())
	acc.SetDeletionTimestamp(curAcc.GetDeletionTimestamp())
	acc.SetDeletionGracePeriodSeconds(curAcc.GetDeletionGracePeriodSeconds())
	acc.SetGeneration(curAcc.GetGeneration())
	acc.SetSelfLink("")
	if acc.GetDeletionTimestamp() != nil {
		// Finalizers may only be removed once deletion started.
		if added := newFinalizers(curAcc.GetFinalizers(), acc.GetFinalizers()); len(added) > 0 {
			return nil, false, s.invalid(name, field.ErrorList{field.Forbidden(field.NewPath("metadata", "finalizers"), fmt.Sprintf("no new finalizers can be added if the object is being deleted, found new finalizers %q", added))})
		}
	}
	sub := ""
	if status {
		sub = "status"
	}
	if mode != SystemUpdate {
		if err := s.admit(ctx, admission.Update, sub, ns, name, obj, cur, dryRun); err != nil {
			return nil, false, err
		}
	}
	if mgr, ok := fieldmanager.ManagerFrom(ctx); ok && s.Fields != nil && mode != SystemUpdate {
		obj = s.Fields.Track(cur, obj, mgr, sub)
		acc, _ = meta.Accessor(obj)
	}
	var errs field.ErrorList
	if mode == SystemUpdate {
		// The server's own subresources (binding) have validated their
		// change already.
	} else if status {
		s.Strategy.PrepareForStatusUpdate(ctx, obj, cur)
		errs = s.Strategy.ValidateStatusUpdate(ctx, obj, cur)
	} else {
		s.Strategy.Default(obj)
		s.Strategy.PrepareForUpdate(ctx, obj, cur)
		if s.Strategy.SpecChanged(obj, cur) {
			acc.SetGeneration(curAcc.GetGeneration() + 1)
		}
		errs = fastvalidation.ValidateObjectMetaAccessorUpdate(acc, curAcc, field.NewPath("metadata"))
		errs = append(errs, fastvalidation.ValidateObjectMetaAccessor(acc, s.Resource.Namespaced, s.Strategy.NameValidator(), field.NewPath("metadata"))...)
		errs = append(errs, s.Strategy.ValidateUpdate(ctx, obj, cur)...)
	}
	if len(errs) > 0 {
		return nil, false, s.invalid(name, errs)
	}
	if equality.Semantic.DeepEqual(obj, cur) {
		if fromCache {
			// Nothing to write is only an answer once etcd confirms the
			// cached object is current.
			return nil, true, nil
		}
		return cur, false, nil
	}
	var reserve, release []string
	if s.Reserver != nil && !status {
		held := s.Reserver.Held(cur)
		want, err := s.Reserver.Assign(ctx, obj, cur)
		if err != nil {
			return nil, false, err
		}
		reserve, release = diffKeys(want, held), diffKeys(held, want)
	}
	if dryRun {
		if fromCache {
			return nil, true, nil
		}
		return obj, false, nil
	}
	// The last finalizer gone from a terminating object deletes it.
	if acc.GetDeletionTimestamp() != nil && len(acc.GetFinalizers()) == 0 && deletionDue(acc, s.Now()) {
		var held []string
		if s.Reserver != nil {
			held = s.Reserver.Held(cur)
		}
		rev, ok, err := s.Storage.Delete(ctx, key, kv.ModRevision, held)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, true, nil
		}
		_ = etcd.SetResourceVersion(obj, rev)
		return obj, false, nil
	}
	raw, err := etcd.Encode(s.Resource.GVK(), obj)
	if err != nil {
		return nil, false, apierrors.NewInternalError(err)
	}
	rev, ok, err := s.Storage.Update(ctx, key, kv.ModRevision, raw, reserve, release)
	var reserved *etcd.ErrReserved
	if errors.As(err, &reserved) && s.Reserver != nil {
		if rerr := s.Reserver.ReservedError(requested, obj, reserved.Key); rerr != nil || attempt > 16 {
			if rerr == nil {
				rerr = apierrors.NewConflict(s.gr(), name, err)
			}
			return nil, false, rerr
		}
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !ok {
		if attempt > 100 {
			return nil, false, apierrors.NewConflict(s.gr(), name, errors.New(conflictMsg))
		}
		return nil, true, nil
	}
	if err := etcd.SetResourceVersion(obj, rev); err != nil {
		return nil, false, apierrors.NewInternalError(err)
	}
	s.hint(key, rev, obj)
	return obj, false, nil
}

// current reads key's stored value from etcd, or from the watch cache.
func (s *Store) current(ctx context.Context, key string, fromCache bool) (etcd.KV, bool, error) {
	if !fromCache {
		return s.Storage.Get(ctx, key, 0)
	}
	e, ok, err := s.Cache.Get(ctx, key, 0)
	if err != nil || !ok || e.Raw == nil {
		return etcd.KV{}, false, err
	}
	return etcd.KV{Key: key, Value: e.Raw, ModRevision: e.Rev}, true, nil
}

const conflictMsg = "the object has been modified; please apply your changes to the latest version and try again"

func deletionDue(acc metav1.Object, now time.Time) bool {
	g := acc.GetDeletionGracePeriodSeconds()
	return g == nil || *g == 0
}

func newFinalizers(old, cur []string) []string {
	have := map[string]bool{}
	for _, f := range old {
		have[f] = true
	}
	var out []string
	for _, f := range cur {
		if !have[f] {
			out = append(out, f)
		}
	}
	return out
}

func diffKeys(a, b []string) []string {
	in := map[string]bool{}
	for _, k := range b {
		in[k] = true
	}
	var out []string
	for _, k := range a {
		if !in[k] {
			out = append(out, k)
		}
	}
	return out
}

// UpdateMode says which strategy path an update takes.
type UpdateMode int

const (
	// MainUpdate is an update of the resource: status kept, spec validated.
	MainUpdate UpdateMode = iota
	// StatusUpdate changes only the status.
	StatusUpdate
	// SystemUpdate is a change made by the server itself (pods/binding):
	// no strategy hooks, metadata still protected.
	SystemUpdate
)

// Update replaces an object; a non-empty resourceVersion must match.
func (s *Store) Update(ctx context.Context, ns, name string, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	return s.update(ctx, ns, name, MainUpdate, dryRun, func(runtime.Object) (runtime.Object, error) { return obj.DeepCopyObject(), nil })
}

// UpdateStatus replaces an object's status.
func (s *Store) UpdateStatus(ctx context.Context, ns, name string, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	if !s.Resource.HasSubresource("status") {
		return nil, apierrors.NewNotFound(s.gr(), name+"/status")
	}
	return s.update(ctx, ns, name, StatusUpdate, dryRun, func(runtime.Object) (runtime.Object, error) { return obj.DeepCopyObject(), nil })
}

// GuaranteedUpdate applies fn to the current object until the write wins.
func (s *Store) GuaranteedUpdate(ctx context.Context, ns, name string, mode UpdateMode, dryRun bool, fn UpdateFunc) (runtime.Object, error) {
	return s.update(ctx, ns, name, mode, dryRun, fn)
}

func (s *Store) admit(ctx context.Context, op admission.Operation, sub, ns, name string, obj, old runtime.Object, dryRun bool) error {
	if s.Admission == nil {
		return nil
	}
	user, _ := authn.UserFrom(ctx)
	return s.Admission.Admit(ctx, admission.Attributes{
		User: user, Operation: op, Group: s.Resource.GVR.Group, Version: s.Resource.GVR.Version,
		Resource: s.Resource.GVR.Resource, Subresource: sub, Namespace: ns, Name: name, OldObject: old, DryRun: dryRun,
	}, obj)
}

func newObject(gvk schema.GroupVersionKind) (runtime.Object, error) {
	obj, err := scheme.Scheme.New(gvk)
	if err != nil {
		return nil, fmt.Errorf("new %v: %w", gvk, err)
	}
	return obj, nil
}
