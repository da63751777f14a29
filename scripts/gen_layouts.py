#!/usr/bin/env python3
"""Generate src/layouts/v3_XX.rs: the byte offsets pyteleport reads, per CPython version.

Offsets come from the DWARF debug info of each libpython (gdb's Python API), so the
tables are data, regenerated rather than hand-edited:

    scripts/gen_layouts.py /root/.pyenv/versions/3.11.7 [...] [--debian CHROOT 3.14 3.15]

--debian: Debian's builds in a chroot (scripts/sid-pythons), whose release interpreter
has no usable debug info: offsets come from the -dbg package's python3.Xd, checked
against probes of the release headers and the release binary's _Py_DebugOffsets (see
debian_layout below); needs gcc.

Each field lists alternatives "type:member.path" ("...*": only if that member is a
pointer); the first that exists in that
version wins. A field some version lacks must be listed in OPTIONAL: it is generated as
`Option<usize>` (None where absent); any other field missing from a version is an error.
Run under gdb: this script re-executes itself as `gdb -batch -x gen_layouts.py`.
"""
import json, os, re, subprocess, sys

# field name -> alternatives. "sizeof:type" gives a struct size.
FIELDS = [
    # runtime / interpreter / thread
    ("runtime_interpreters_head", ["_PyRuntimeState:interpreters.head"]),
    ("runtime_interpreters_main", ["_PyRuntimeState:interpreters.main"]),
    ("interp_next", ["PyInterpreterState:next"]),
    ("interp_id", ["PyInterpreterState:id"]),
    ("interp_threads_head", ["PyInterpreterState:threads.head"]),
    ("interp_modules", ["PyInterpreterState:imports.modules", "PyInterpreterState:modules"]),
    ("interp_sysdict", ["PyInterpreterState:sysdict"]),
    ("interp_recursion_limit", ["PyInterpreterState:ceval.recursion_limit"]),
    ("interp_builtins", ["PyInterpreterState:builtins"]),
    ("tstate_next", ["PyThreadState:next"]),
    ("tstate_interp", ["PyThreadState:interp"]),
    ("tstate_thread_id", ["PyThreadState:thread_id"]),
    ("tstate_native_thread_id", ["PyThreadState:native_thread_id"]),
    ("tstate_cframe", ["PyThreadState:cframe"]),
    ("tstate_current_frame", ["PyThreadState:current_frame"]),
    ("cframe_current_frame", ["_PyCFrame:current_frame"]),
    ("tstate_exc_info", ["PyThreadState:exc_info"]),
    ("tstate_exc_state", ["PyThreadState:exc_state"]),
    ("err_stack_item_exc_value", ["_PyErr_StackItem:exc_value"]),
    ("err_stack_item_previous", ["_PyErr_StackItem:previous_item"]),
    # interpreter frame
    ("frame_executable", ["_PyInterpreterFrame:f_executable", "_PyInterpreterFrame:f_code"]),
    ("frame_previous", ["_PyInterpreterFrame:previous"]),
    ("frame_funcobj", ["_PyInterpreterFrame:f_funcobj", "_PyInterpreterFrame:f_func"]),
    ("frame_globals", ["_PyInterpreterFrame:f_globals"]),
    ("frame_builtins", ["_PyInterpreterFrame:f_builtins"]),
    ("frame_locals", ["_PyInterpreterFrame:f_locals"]),
    ("frame_frame_obj", ["_PyInterpreterFrame:frame_obj"]),
    ("frame_prev_instr", ["_PyInterpreterFrame:prev_instr"]),
    ("frame_instr_ptr", ["_PyInterpreterFrame:instr_ptr"]),
    ("frame_stacktop", ["_PyInterpreterFrame:stacktop"]),
    ("frame_stackpointer", ["_PyInterpreterFrame:stackpointer"]),
    ("frame_return_offset", ["_PyInterpreterFrame:return_offset"]),
    ("frame_owner", ["_PyInterpreterFrame:owner"]),
    ("frame_is_entry", ["_PyInterpreterFrame:is_entry"]),
    ("frame_localsplus", ["_PyInterpreterFrame:localsplus"]),
    ("frame_object_frame", ["PyFrameObject:f_frame"]),
    # code
    ("code_consts", ["PyCodeObject:co_consts"]),
    ("code_names", ["PyCodeObject:co_names"]),
    ("code_exceptiontable", ["PyCodeObject:co_exceptiontable"]),
    ("code_flags", ["PyCodeObject:co_flags"]),
    ("code_argcount", ["PyCodeObject:co_argcount"]),
    ("code_posonlyargcount", ["PyCodeObject:co_posonlyargcount"]),
    ("code_kwonlyargcount", ["PyCodeObject:co_kwonlyargcount"]),
    ("code_stacksize", ["PyCodeObject:co_stacksize"]),
    ("code_firstlineno", ["PyCodeObject:co_firstlineno"]),
    ("code_nlocalsplus", ["PyCodeObject:co_nlocalsplus"]),
    ("code_framesize", ["PyCodeObject:co_framesize"]),
    ("code_nlocals", ["PyCodeObject:co_nlocals"]),
    ("code_ncellvars", ["PyCodeObject:co_ncellvars"]),
    ("code_nfreevars", ["PyCodeObject:co_nfreevars"]),
    ("code_localsplusnames", ["PyCodeObject:co_localsplusnames"]),
    ("code_localspluskinds", ["PyCodeObject:co_localspluskinds"]),
    ("code_filename", ["PyCodeObject:co_filename"]),
    ("code_name", ["PyCodeObject:co_name"]),
    ("code_qualname", ["PyCodeObject:co_qualname"]),
    ("code_linetable", ["PyCodeObject:co_linetable"]),
    ("code_code_adaptive", ["PyCodeObject:co_code_adaptive"]),
    # objects
    ("object_type", ["PyObject:ob_type"]),
    ("var_object_size", ["PyVarObject:ob_size"]),
    ("type_name", ["PyTypeObject:tp_name"]),
    ("type_basicsize", ["PyTypeObject:tp_basicsize"]),
    ("type_itemsize", ["PyTypeObject:tp_itemsize"]),
    ("type_flags", ["PyTypeObject:tp_flags"]),
    ("type_base", ["PyTypeObject:tp_base"]),
    ("type_bases", ["PyTypeObject:tp_bases"]),
    ("type_dict", ["PyTypeObject:tp_dict"]),
    ("type_mro", ["PyTypeObject:tp_mro"]),
    ("type_dictoffset", ["PyTypeObject:tp_dictoffset"]),
    ("heaptype_name", ["PyHeapTypeObject:ht_name"]),
    ("heaptype_qualname", ["PyHeapTypeObject:ht_qualname"]),
    ("heaptype_slots", ["PyHeapTypeObject:ht_slots"]),
    ("heaptype_module", ["PyHeapTypeObject:ht_module"]),
    ("heaptype_cached_keys", ["PyHeapTypeObject:ht_cached_keys"]),
    ("long_lv_tag", ["PyLongObject:long_value.lv_tag"]),
    ("long_digits", ["PyLongObject:long_value.ob_digit", "PyLongObject:ob_digit"]),
    ("float_value", ["PyFloatObject:ob_fval"]),
    ("complex_value", ["PyComplexObject:cval"]),
    ("bytes_data", ["PyBytesObject:ob_sval"]),
    ("bytearray_bytes", ["PyByteArrayObject:ob_bytes"]),
    ("bytearray_start", ["PyByteArrayObject:ob_start"]),
    ("ascii_length", ["PyASCIIObject:length"]),
    ("ascii_state", ["PyASCIIObject:state"]),
    ("ascii_object_size", ["sizeof:PyASCIIObject"]),
    ("compact_object_size", ["sizeof:PyCompactUnicodeObject"]),
    ("unicode_data", ["PyUnicodeObject:data"]),
    ("tuple_items", ["PyTupleObject:ob_item"]),
    ("list_items", ["PyListObject:ob_item"]),
    ("dict_used", ["PyDictObject:ma_used"]),
    ("dict_keys", ["PyDictObject:ma_keys"]),
    ("dict_values", ["PyDictObject:ma_values"]),
    ("dictkeys_log2_size", ["struct _dictkeysobject:dk_log2_size"]),
    ("dictkeys_log2_index_bytes", ["struct _dictkeysobject:dk_log2_index_bytes"]),
    ("dictkeys_kind", ["struct _dictkeysobject:dk_kind"]),
    ("dictkeys_nentries", ["struct _dictkeysobject:dk_nentries"]),
    ("dictkeys_indices", ["struct _dictkeysobject:dk_indices"]),
    ("dict_key_entry_size", ["sizeof:PyDictKeyEntry"]),
    ("dict_unicode_entry_size", ["sizeof:PyDictUnicodeEntry"]),
    ("dictvalues_capacity", ["PyDictValues:capacity"]),
    ("dictvalues_size", ["PyDictValues:size"]),
    ("dictvalues_valid", ["PyDictValues:valid"]),
    ("dictvalues_values", ["PyDictValues:values"]),
    ("set_mask", ["PySetObject:mask"]),
    ("set_table", ["PySetObject:table"]),
    ("set_used", ["PySetObject:used"]),
    ("set_entry_size", ["sizeof:setentry"]),
    ("cell_ref", ["PyCellObject:ob_ref"]),
    ("function_code", ["PyFunctionObject:func_code"]),
    ("function_globals", ["PyFunctionObject:func_globals"]),
    ("function_name", ["PyFunctionObject:func_name"]),
    ("function_qualname", ["PyFunctionObject:func_qualname"]),
    ("function_defaults", ["PyFunctionObject:func_defaults"]),
    ("function_kwdefaults", ["PyFunctionObject:func_kwdefaults"]),
    ("function_closure", ["PyFunctionObject:func_closure"]),
    ("function_dict", ["PyFunctionObject:func_dict"]),
    ("function_module", ["PyFunctionObject:func_module"]),
    ("function_annotations", ["PyFunctionObject:func_annotations"]),
    ("method_func", ["PyMethodObject:im_func"]),
    ("method_self", ["PyMethodObject:im_self"]),
    ("cfunction_def", ["PyCFunctionObject:m_ml"]),
    ("cfunction_self", ["PyCFunctionObject:m_self"]),
    ("cfunction_module", ["PyCFunctionObject:m_module"]),
    ("methoddef_name", ["PyMethodDef:ml_name"]),
    ("module_dict", ["PyModuleObject:md_dict"]),
    ("gen_frame_state", ["PyGenObject:gi_frame_state"]),
    ("gen_iframe", ["PyGenObject:gi_iframe"]),
    ("gen_exc_state", ["PyGenObject:gi_exc_state"]),
    ("gen_name", ["PyGenObject:gi_name"]),
    ("gen_qualname", ["PyGenObject:gi_qualname"]),
    ("gen_code", ["PyGenObject:gi_code"]),
    ("member_descr_member", ["PyMemberDescrObject:d_member"]),
    ("descr_type", ["PyDescrObject:d_type"]),
    ("descr_name", ["PyDescrObject:d_name"]),
    ("memberdef_type", ["PyMemberDef:type"]),
    ("memberdef_offset", ["PyMemberDef:offset"]),
    ("range_start", ["rangeobject:start"]),
    ("range_stop", ["rangeobject:stop"]),
    ("range_step", ["rangeobject:step"]),
    ("range_iter_index", ["rangeiterobject:index"]),
    ("range_iter_start", ["rangeiterobject:start", "_PyRangeIterObject:start"]),
    ("range_iter_step", ["rangeiterobject:step", "_PyRangeIterObject:step"]),
    ("range_iter_len", ["rangeiterobject:len", "_PyRangeIterObject:len"]),
    ("seq_iter_index", ["listiterobject:it_index", "_PyListIterObject:it_index"]),
    ("seq_iter_seq", ["listiterobject:it_seq", "_PyListIterObject:it_seq"]),
    ("enum_index", ["enumobject:en_index"]),
    ("enum_iter", ["enumobject:en_sit"]),
    ("enum_long_index", ["enumobject:en_longindex"]),
    ("zip_iters", ["zipobject:ittuple"]),
    ("zip_strict", ["zipobject:strict"]),
    ("dictiter_dict", ["dictiterobject:di_dict"]),
    ("dictiter_used", ["dictiterobject:di_used"]),
    ("dictiter_pos", ["dictiterobject:di_pos"]),
    ("dictiter_len", ["dictiterobject:len"]),
    ("classmethod_callable", ["classmethod:cm_callable"]),
    ("classmethod_dict", ["classmethod:cm_dict"]),
    ("staticmethod_callable", ["staticmethod:sm_callable"]),
    ("staticmethod_dict", ["staticmethod:sm_dict"]),
    ("property_get", ["propertyobject:prop_get"]),
    ("property_set", ["propertyobject:prop_set"]),
    ("property_del", ["propertyobject:prop_del"]),
    ("property_doc", ["propertyobject:prop_doc"]),
    ("tuplegetter_index", ["_tuplegetterobject:index"]),
    ("tuplegetter_doc", ["_tuplegetterobject:doc"]),
    ("slice_start", ["PySliceObject:start"]),
    ("slice_stop", ["PySliceObject:stop"]),
    ("slice_step", ["PySliceObject:step"]),
    ("deque_leftblock", ["dequeobject:leftblock"]),
    ("deque_leftindex", ["dequeobject:leftindex"]),
    ("deque_maxlen", ["dequeobject:maxlen"]),
    ("deque_block_data", ["block:data"]),
    ("deque_block_rightlink", ["block:rightlink"]),
    ("defaultdict_factory", ["defdictobject:default_factory"]),
    ("odict_first", ["PyODictObject:od_first"]),
    ("odictnode_key", ["_ODictNode:key"]),
    ("odictnode_next", ["_ODictNode:next"]),
    ("map_iters", ["mapobject:iters"]),
    ("map_func", ["mapobject:func"]),
    ("filter_func", ["filterobject:func"]),
    ("filter_it", ["filterobject:it"]),
    ("reversed_index", ["reversedobject:index"]),
    ("reversed_seq", ["reversedobject:seq"]),
    ("count_cnt", ["countobject:cnt"]),
    ("count_long_cnt", ["countobject:long_cnt"]),
    ("count_long_step", ["countobject:long_step"]),
    ("partial_fn", ["partialobject:fn"]),
    ("partial_args", ["partialobject:args"]),
    ("partial_kw", ["partialobject:kw"]),
    ("partial_dict", ["partialobject:dict"]),
    ("pattern_pattern", ["PatternObject:pattern"]),
    ("pattern_flags", ["PatternObject:flags"]),
    ("lru_root_next", ["lru_cache_object:root.next"]),
    ("lru_typed", ["lru_cache_object:typed"]),
    ("lru_cache", ["lru_cache_object:cache"]),
    ("lru_func", ["lru_cache_object:func"]),
    ("lru_maxsize", ["lru_cache_object:maxsize"]),
    ("lru_kwd_mark", ["lru_cache_object:kwd_mark"]),
    ("lru_hits", ["lru_cache_object:hits"]),
    ("lru_misses", ["lru_cache_object:misses"]),
    ("lru_link_next", ["lru_list_elem:next"]),
    ("lru_link_key", ["lru_list_elem:key"]),
    ("lru_link_result", ["lru_list_elem:result"]),
    ("setiter_set", ["setiterobject:si_set"]),
    ("setiter_pos", ["setiterobject:si_pos"]),
    ("setiter_len", ["setiterobject:len"]),
    ("lock_locked", ["lockobject:locked", "lockobject:lock._bits"]),
    # weakref.ref / proxy: the referent (None once dead) and the callback
    ("weakref_object", ["PyWeakReference:wr_object"]),
    ("weakref_callback", ["PyWeakReference:wr_callback"]),
    # threading.local: each thread's dict, under the thread state's dict (3.11, 3.12: a
    # dummy keyed by the local's key) or in the local's own dict (3.13: keyed per thread)
    ("local_key", ["localobject:key"]),
    ("local_args", ["localobject:args"]),
    ("local_kw", ["localobject:kw"]),
    ("local_localdicts", ["localobject:localdicts"]),
    ("localdummy_localdict", ["localdummyobject:localdict"]),
    ("tstate_dict", ["PyThreadState:dict"]),
    ("tstate_threading_local_key", ["PyThreadState:threading_local_key"]),
    # sqlite3: what Python cannot see of a connection (how it was opened), and whether a
    # cursor is in the middle of a query's rows
    ("sqlite_connection_detect_types", ["pysqlite_Connection:detect_types"]),
    ("sqlite_connection_check_same_thread", ["pysqlite_Connection:check_same_thread"]),
    ("sqlite_connection_thread_ident", ["pysqlite_Connection:thread_ident"]),
    ("sqlite_cursor_statement", ["pysqlite_Cursor:statement"]),
    # atexit.register()ed callbacks: an array of pointers (NULL where unregistered), or
    # (3.14+, no ncallbacks) a list of (func, args, kwargs) tuples
    ("interp_atexit_callbacks", ["PyInterpreterState:atexit.callbacks"]),
    ("interp_atexit_ncallbacks", ["PyInterpreterState:atexit.ncallbacks"]),
    ("atexit_callback_func", ["atexit_py_callback:func", "atexit_callback:func"]),
    ("atexit_callback_args", ["atexit_py_callback:args", "atexit_callback:args"]),
    ("atexit_callback_kwargs", ["atexit_py_callback:kwargs", "atexit_callback:kwargs"]),
    ("rlock_owner", ["rlockobject:rlock_owner", "rlockobject:lock.thread"]),
    ("rlock_count", ["rlockobject:rlock_count", "rlockobject:lock.level"]),
    ("chain_source", ["chainobject:source"]),
    ("chain_active", ["chainobject:active"]),
    ("islice_it", ["isliceobject:it"]),
    ("islice_next", ["isliceobject:next"]),
    ("islice_stop", ["isliceobject:stop"]),
    ("islice_step", ["isliceobject:step"]),
    ("islice_cnt", ["isliceobject:cnt"]),
    ("repeat_element", ["repeatobject:element"]),
    ("repeat_cnt", ["repeatobject:cnt"]),
    ("cycle_it", ["cycleobject:it"]),
    ("cycle_saved", ["cycleobject:saved"]),
    ("cycle_index", ["cycleobject:index"]),
    ("accumulate_total", ["accumulateobject:total"]),
    ("accumulate_it", ["accumulateobject:it"]),
    ("accumulate_binop", ["accumulateobject:binop"]),
    ("accumulate_initial", ["accumulateobject:initial"]),
    ("itemgetter_nitems", ["itemgetterobject:nitems"]),
    ("itemgetter_item", ["itemgetterobject:item"]),
    ("attrgetter_attr", ["attrgetterobject:attr"]),
    # extension modules (their debug info is loaded from lib-dynload, see EXTENSIONS)
    ("random_index", ["RandomObject:index"]),
    ("random_state", ["RandomObject:state"]),
    ("date_data", ["PyDateTime_Date:data"]),
    ("datetime_hastzinfo", ["PyDateTime_DateTime:hastzinfo"]),
    ("datetime_data", ["PyDateTime_DateTime:data"]),
    ("datetime_fold", ["PyDateTime_DateTime:fold"]),
    ("datetime_tzinfo", ["PyDateTime_DateTime:tzinfo"]),
    ("time_hastzinfo", ["PyDateTime_Time:hastzinfo"]),
    ("time_data", ["PyDateTime_Time:data"]),
    ("time_fold", ["PyDateTime_Time:fold"]),
    ("time_tzinfo", ["PyDateTime_Time:tzinfo"]),
    ("delta_days", ["PyDateTime_Delta:days"]),
    ("delta_seconds", ["PyDateTime_Delta:seconds"]),
    ("delta_microseconds", ["PyDateTime_Delta:microseconds"]),
    ("timezone_offset", ["PyDateTime_TimeZone:offset"]),
    ("timezone_name", ["PyDateTime_TimeZone:name"]),
    ("decimal_flags", ["PyDecObject:dec.flags"]),
    ("decimal_exp", ["PyDecObject:dec.exp"]),
    ("decimal_len", ["PyDecObject:dec.len"]),
    ("decimal_data", ["PyDecObject:dec.data"]),
    ("exception_args", ["PyBaseExceptionObject:args"]),
    ("exception_notes", ["PyBaseExceptionObject:notes"]),
    ("exception_traceback", ["PyBaseExceptionObject:traceback"]),
    ("exception_context", ["PyBaseExceptionObject:context"]),
    ("exception_cause", ["PyBaseExceptionObject:cause"]),
    ("exception_suppress_context", ["PyBaseExceptionObject:suppress_context"]),
    ("exception_dict", ["PyBaseExceptionObject:dict"]),
    ("debug_offsets_size", ["sizeof:_Py_DebugOffsets"]),
    ("debug_offsets_free_threaded", ["_Py_DebugOffsets:free_threaded"]),
    # safe points: what makes the eval loop call its pending-work handler
    ("runtime_signals_pending", ["_PyRuntimeState:ceval.signals_pending"]),
    ("interp_eval_breaker", ["PyInterpreterState:ceval.eval_breaker"]),
    ("tstate_eval_breaker", ["PyThreadState:eval_breaker"]),
    # io objects: output still buffered in a process that is being moved
    ("textio_buffer", ["textio:buffer"]),
    ("textio_pending_bytes", ["textio:pending_bytes"]),
    ("textio_pending_bytes_count", ["textio:pending_bytes_count"]),
    ("textio_decoded_chars", ["textio:decoded_chars"]),
    ("textio_decoded_chars_used", ["textio:decoded_chars_used"]),
    ("textio_encoding", ["textio:encoding"]),
    ("textio_errors", ["textio:errors"]),
    ("textio_readnl", ["textio:readnl"]),
    ("textio_readtranslate", ["textio:readtranslate"]),
    ("buffered_raw_pos", ["buffered:raw_pos"]),
    ("stringio_buf", ["stringio:buf"]),
    ("stringio_pos", ["stringio:pos"]),
    ("stringio_string_size", ["stringio:string_size"]),
    ("stringio_state", ["stringio:state"]),
    ("stringio_writer_buffer", ["stringio:writer.buffer"]),
    ("stringio_writer_pos", ["stringio:writer.pos"]),
    ("stringio_writer_ptr", ["stringio:writer*"]),  # 3.14+: a PyUnicodeWriter pointer
    ("unicode_writer_buffer", ["_PyUnicodeWriter:buffer"]),
    ("unicode_writer_pos", ["_PyUnicodeWriter:pos"]),
    ("stringio_accu_large", ["stringio:accu.large"]),
    ("stringio_accu_small", ["stringio:accu.small"]),
    ("stringio_closed", ["stringio:closed"]),
    ("stringio_readnl", ["stringio:readnl"]),
    ("stringio_dict", ["stringio:dict"]),
    ("bytesio_buf", ["bytesio:buf"]),
    ("bytesio_pos", ["bytesio:pos"]),
    ("bytesio_string_size", ["bytesio:string_size"]),
    ("bytesio_dict", ["bytesio:dict"]),
    ("buffered_pos", ["buffered:pos"]),
    ("buffered_read_end", ["buffered:read_end"]),
    ("buffered_raw", ["buffered:raw"]),
    ("buffered_buffer", ["buffered:buffer"]),
    ("buffered_write_pos", ["buffered:write_pos"]),
    ("buffered_write_end", ["buffered:write_end"]),
    ("fileio_fd", ["fileio:fd"]),
]

# Fields that some supported version does not have (generated as Option<usize>).
OPTIONAL = {
    "tstate_cframe", "tstate_current_frame", "cframe_current_frame",  # 3.13 dropped _PyCFrame
    "frame_prev_instr", "frame_instr_ptr",  # prev_instr (3.11, 3.12), instr_ptr (3.13+)
    "frame_return_offset", "frame_is_entry", "code_framesize", "gen_code",
    "long_lv_tag",  # 3.12+ tagged size and sign
    "dictvalues_capacity", "dictvalues_size", "dictvalues_valid",  # 3.13 PyDictValues header
    "range_iter_index",
    "debug_offsets_size", "debug_offsets_free_threaded",  # 3.13+
    "frame_stacktop", "frame_stackpointer",  # int stacktop (3.11-3.13), pointer (3.14+)
    "runtime_signals_pending", "interp_eval_breaker", "tstate_eval_breaker",
    "stringio_writer_buffer", "stringio_writer_pos",  # 3.12, 3.13: an embedded _PyUnicodeWriter
    "stringio_writer_ptr",  # 3.14+: a pointer to one
    "interp_atexit_ncallbacks", "atexit_callback_func", "atexit_callback_args",  # 3.14+: a list
    "atexit_callback_kwargs",
    "stringio_accu_large", "stringio_accu_small",  # 3.11 _PyAccu
    "local_key", "localdummy_localdict",  # 3.11, 3.12 threading.local
    "local_localdicts", "tstate_threading_local_key",  # 3.13 threading.local
}

# Facts about a version's object layout that its debug info does not state (macros and
# inline functions of the headers), by minor version; emitted as named Layout fields.
# (name, Rust type, doc, {minor: value}); a minor not listed gets the default (first None or False).
FACTS = [
    ("managed_dict_offset", "i64",
     "where an object with Py_TPFLAGS_MANAGED_DICT keeps its dict pointer, relative to the object "
     "(the pre-header: _PyObject_ManagedDictPointer)", {11: -24, 12: -24, 13: -24, 14: -24, 15: -24}),
    ("managed_values_offset", "Option<i64>",
     "where such an object keeps its split values pointer, when in a word of its own "
     "(3.11 _PyObject_ValuesPointer)", {11: -32}),
    ("managed_dict_tags_values", "bool",
     "the managed dict word holds a values pointer minus one when its low bit is set "
     "(3.12 PyDictOrValues)", {12: True}),
    ("tpflags_inline_values", "Option<u64>",
     "Py_TPFLAGS_INLINE_VALUES: the values array follows the object at tp_basicsize (3.13+)",
     {13: 1 << 2, 14: 1 << 2, 15: 1 << 2}),
    ("init_cleanup_shim", "bool",
     "__init__ calls go through the _Py_InitCleanup shim frame (3.13+)", {13: True, 14: True, 15: True}),
    ("stackrefs", "bool",
     "frame slots (f_executable, f_funcobj, locals, value stack) are tagged _PyStackRef words: "
     "NULL is 1, bit 0 marks a borrowed reference, (bits & 3) == 3 a tagged int (3.14+)",
     {14: True, 15: True}),
    ("rlock_count_is_level", "bool",
     "an RLock's count field is _PyRecursiveMutex.level: acquisitions beyond the first (3.14+)",
     {14: True, 15: True}),
    ("movable", "bool",
     "teleport, attach and restore support this version (else it can only be read: dump)",
     {11: True, 12: True, 13: True}),
    ("call_function_ex_pops_early", "bool",
     "CALL_FUNCTION_EX pops its argument tuple (and kwargs) before the call is made: during it "
     "those stack slots are stale (3.11)", {11: True}),
]


# FACTS the release headers state as macros: checked against them in the Debian mode.
FACT_MACROS = {"managed_dict_offset": "MANAGED_DICT_OFFSET", "tpflags_inline_values": "Py_TPFLAGS_INLINE_VALUES"}


def fact_value(rust_type, value):
    if rust_type == "bool":
        return "true" if value else "false"
    if rust_type.startswith("Option<"):
        return "None" if value is None else f"Some({value})"
    return str(value)


# _Py_DebugOffsets (3.13+): where, inside the table the interpreter carries, each of our
# fields is reported; checked at run time so a patch release that moved a field is refused.
DEBUG_OFFSET_CHECKS = [
    ("runtime_interpreters_head", "runtime_state.interpreters_head"),
    ("interp_next", "interpreter_state.next"),
    ("interp_threads_head", "interpreter_state.threads_head"),
    ("tstate_next", "thread_state.next"),
    ("tstate_interp", "thread_state.interp"),
    ("tstate_current_frame", "thread_state.current_frame"),
    ("tstate_thread_id", "thread_state.thread_id"),
    ("tstate_native_thread_id", "thread_state.native_thread_id"),
    ("frame_previous", "interpreter_frame.previous"),
    ("frame_executable", "interpreter_frame.executable"),
    ("frame_instr_ptr", "interpreter_frame.instr_ptr"),
    ("frame_localsplus", "interpreter_frame.localsplus"),
    ("frame_owner", "interpreter_frame.owner"),
    ("code_filename", "code_object.filename"),
    ("code_name", "code_object.name"),
    ("code_qualname", "code_object.qualname"),
    ("code_linetable", "code_object.linetable"),
    ("code_firstlineno", "code_object.firstlineno"),
    ("code_argcount", "code_object.argcount"),
    ("code_localsplusnames", "code_object.localsplusnames"),
    ("code_localspluskinds", "code_object.localspluskinds"),
    ("code_code_adaptive", "code_object.co_code_adaptive"),
    ("object_type", "pyobject.ob_type"),
    ("type_name", "type_object.tp_name"),
    ("tuple_items", "tuple_object.ob_item"),
    ("var_object_size", "tuple_object.ob_size"),
    ("dict_keys", "dict_object.ma_keys"),
    ("dict_values", "dict_object.ma_values"),
    ("float_value", "float_object.ob_fval"),
    ("long_lv_tag", "long_object.lv_tag"),
    ("long_digits", "long_object.ob_digit"),
    ("bytes_data", "bytes_object.ob_sval"),
    ("ascii_state", "unicode_object.state"),
    ("ascii_length", "unicode_object.length"),
    ("ascii_object_size", "unicode_object.asciiobject_size"),
    ("gen_name", "gen_object.gi_name"),
    ("gen_iframe", "gen_object.gi_iframe"),
    ("gen_frame_state", "gen_object.gi_frame_state"),
    ("frame_stackpointer", "interpreter_frame.stackpointer"),
]


# Enumeration values some version lacks are generated as Option<i32>.
OPTIONAL_ENUMS = {"FRAME_SUSPENDED_YIELD_FROM", "FRAME_OWNED_BY_CSTACK", "FRAME_COMPLETED",
                  "FRAME_SUSPENDED_YIELD_FROM_LOCKED", "FRAME_OWNED_BY_INTERPRETER"}

ENUMS = ["FRAME_CREATED", "FRAME_SUSPENDED", "FRAME_SUSPENDED_YIELD_FROM", "FRAME_SUSPENDED_YIELD_FROM_LOCKED",
         "FRAME_EXECUTING", "FRAME_COMPLETED", "FRAME_CLEARED", "FRAME_OWNED_BY_THREAD",
         "FRAME_OWNED_BY_GENERATOR", "FRAME_OWNED_BY_FRAME_OBJECT", "FRAME_OWNED_BY_CSTACK",
         "FRAME_OWNED_BY_INTERPRETER"]


def in_gdb():
    import gdb

    def resolve(spec):
        if spec.startswith("sizeof:"):
            return gdb.lookup_type(spec[7:]).strip_typedefs().sizeof
        tname, path = spec.split(":")
        want_pointer = path.endswith("*")
        path = path.rstrip("*")
        ty = gdb.lookup_type(tname).strip_typedefs()
        off = 0
        for part in path.split("."):
            for f in ty.fields():
                if f.name == part:
                    off += f.bitpos // 8
                    ty = f.type.strip_typedefs()
                    break
            else:
                raise KeyError(part)
        if want_pointer and ty.code != gdb.TYPE_CODE_PTR:
            raise KeyError(path + " is not a pointer")
        return off

    def first(alts):
        for a in alts:
            try:
                return resolve(a), a
            except Exception:
                pass
        return None, None

    found = {n: first(a) for n, a in FIELDS}
    out = {"fields": {n: v for n, (v, _) in found.items()}, "spec": {n: a for n, (_, a) in found.items()},
           "debug_offsets": {}, "bits": {}}
    try:
        for ours, theirs in DEBUG_OFFSET_CHECKS:
            try:
                out["debug_offsets"][ours] = resolve("_Py_DebugOffsets:" + theirs)
            except Exception:
                pass
    except Exception:
        pass
    # Bit positions inside PyASCIIObject.state (a bitfield struct).
    st = gdb.lookup_type("PyASCIIObject").strip_typedefs()["state"].type.strip_typedefs()
    for f in st.fields():
        out["bits"][f.name] = [f.bitpos, f.bitsize]
    # Enumerations the reader and the restore engine compare against.
    out["enums"] = {}
    for enum_name in ("enum _framestate", "enum _frameowner"):
        try:
            for f in gdb.lookup_type(enum_name).strip_typedefs().fields():
                out["enums"][f.name] = f.enumval
        except Exception:
            pass
    print("LAYOUT-JSON " + json.dumps(out))


# Extension modules built as shared objects whose structures are read too.
EXTENSIONS = ["_random", "_datetime", "_decimal", "_sqlite3"]


def run_gdb(binary, extra_ex):
    res = subprocess.run(["gdb", "-batch", *extra_ex, "-x", os.path.abspath(__file__), binary],
                         capture_output=True, text=True, env={**os.environ, "GEN_LAYOUTS_IN_GDB": "1"})
    line = [l for l in res.stdout.splitlines() if l.startswith("LAYOUT-JSON ")]
    if not line:
        sys.exit(f"gdb failed for {binary}:\n{res.stderr}")
    return json.loads(line[0][len("LAYOUT-JSON "):])


def main():
    args = sys.argv[1:]
    prefixes, debian = args, []
    if "--debian" in args:
        i = args.index("--debian")
        prefixes, debian = args[:i], args[i + 1:]
        if len(debian) < 2:
            sys.exit("usage: gen_layouts.py PREFIX... [--debian CHROOT X.Y...]")
    here = os.path.dirname(os.path.abspath(__file__))
    dest = os.path.join(here, "..", "src", "layouts")
    for prefix in prefixes:
        version = os.path.basename(prefix.rstrip("/"))
        major, minor = version.split(".")[:2]
        lib = os.path.join(prefix, "lib", f"libpython{major}.{minor}.so.1.0")
        dynload = os.path.join(prefix, "lib", f"python{major}.{minor}", "lib-dynload")
        extra = []
        for ext in EXTENSIONS:
            found = [f for f in os.listdir(dynload) if f.startswith(ext + ".cpython-")]
            if not found:
                sys.exit(f"{ext} not found in {dynload}")
            extra += ["-ex", f"add-symbol-file {os.path.join(dynload, found[0])}"]
        write_rust(dest, version, run_gdb(lib, extra))
    if debian:
        chroot = debian[0]
        for minor_version in debian[1:]:
            version, data, source = debian_layout(chroot, minor_version)
            write_rust(dest, version, data, source)
    write_struct(dest)


# --- Debian mode -------------------------------------------------------------------
# Debian's release interpreter (/usr/bin/python3.X: static, LTO, stripped) has no usable
# DWARF; its -dbg package ships python3.Xd, a Py_DEBUG build with full DWARF. Offsets come
# from python3.Xd and are checked against the release build two ways, so that nothing a
# Py_DEBUG build lays out differently slips through:
#   * offsetof()/sizeof()/enum/bit-field probes compiled against the release headers
#     (every structure a header defines); struct sizes are taken from this side;
#   * the release binary's own _Py_DebugOffsets (its .PyRuntime section, read from the file).
# Any disagreement stops the generation and names the field.

PROBE_HEADERS = [
    "Python.h", "datetime.h", "internal/pycore_runtime.h", "internal/pycore_interp.h", "internal/pycore_tstate.h",
    "internal/pycore_frame.h", "internal/pycore_interpframe.h", "internal/pycore_interpframe_structs.h",
    "internal/pycore_code.h", "internal/pycore_dict.h", "internal/pycore_genobject.h",
    "internal/pycore_long.h", "internal/pycore_object.h", "internal/pycore_function.h",
    "internal/pycore_moduleobject.h", "internal/pycore_descrobject.h", "internal/pycore_range.h",
    "internal/pycore_pyerrors.h", "internal/pycore_cell.h", "internal/pycore_unicodeobject.h",
    "internal/pycore_debug_offsets.h", "internal/pycore_stackref.h", "internal/pycore_setobject.h",
    "internal/pycore_sliceobject.h", "internal/pycore_typeobject.h", "internal/pycore_ceval_state.h",
    "internal/pycore_lock.h", "internal/pycore_list.h", "internal/pycore_tuple.h",
]


def c_type(tname):
    return tname  # gdb and C spell them alike ("struct _dictkeysobject", typedef names)


def probe_headers(chroot, minor_version, data, debug=False):
    """Offsets, sizes, enum values and unicode state bits as the release headers say (or,
    `debug`, the same headers configured as for python3.Xd: its pyconfig.h, Py_DEBUG)."""
    import tempfile
    inc = os.path.join(chroot, "usr", "include", f"python{minor_version}")
    lines, keys = [], []
    for name, spec in data["spec"].items():
        if spec is None:
            continue
        if spec.startswith("sizeof:"):
            expr = f"sizeof({c_type(spec[7:])})"
        else:
            tname, path = spec.split(":")
            expr = f"offsetof({c_type(tname)}, {path.rstrip('*')})"
        keys.append(("field", name))
        lines.append(f'    printf("field {name} %zu\\n", (size_t){expr});')
    for ours, theirs in DEBUG_OFFSET_CHECKS:
        keys.append(("dbgpos", ours))
        lines.append(f'    printf("dbgpos {ours} %zu\\n", (size_t)offsetof(_Py_DebugOffsets, {theirs}));')
    for e in ENUMS:
        keys.append(("enum", e))
        lines.append(f'    printf("enum {e} %d\\n", (int){e});')
    for fact, macro in FACT_MACROS.items():
        keys.append(("fact", fact))
        lines.append(f'    printf("fact {fact} %lld\\n", (long long)({macro}));')
    for bit in ("interned", "kind", "compact", "ascii"):
        # Set one bit-field to all ones and see which bits of the state word it covers.
        keys.append(("bits", bit))
        lines.append("    { PyASCIIObject o; unsigned char raw[sizeof o.state]; unsigned v = 0; int pos = -1, n = 0;"
                     f" memset(&o, 0, sizeof o); o.state.{bit} = ~0u; memcpy(raw, &o.state, sizeof raw);"
                     " for (int i = 0; i < (int)(8 * sizeof raw); i++) if (raw[i / 8] >> (i % 8) & 1) { if (pos < 0) pos = i; n++; }"
                     f' (void)v; printf("bits {bit} %d %d\\n", pos, n); }}')
    head = ["#define Py_BUILD_CORE 1", "#include <stddef.h>", "#include <stdio.h>", "#include <string.h>"]
    for h in PROBE_HEADERS:
        head.append(f'#if __has_include("{h}")\n#include "{h}"\n#endif')
    head.append("int main(void) {")
    first_line = len("\n".join(head).splitlines()) + 1
    with tempfile.TemporaryDirectory() as tmp:
        cc = ["gcc", "-w"]
        if debug:
            # Debian's pyconfig.h picks the multiarch one by architecture only: point that
            # name at the debug build's configuration.
            multiarch = os.path.join(tmp, "inc", "x86_64-linux-gnu", f"python{minor_version}")
            os.makedirs(multiarch)
            with open(os.path.join(multiarch, "pyconfig.h"), "w") as fh:
                fh.write(f"#include <x86_64-linux-gnu/python{minor_version}d/pyconfig.h>\n")
            cc += ["-I", os.path.join(tmp, "inc")]
        cc += ["-I", inc, "-idirafter", os.path.join(chroot, "usr", "include")]
        src, exe = os.path.join(tmp, "probe.c"), os.path.join(tmp, "probe")
        body = list(lines)
        for attempt in range(2):
            with open(src, "w") as fh:
                fh.write("\n".join(head + body + ["    return 0;", "}"]) + "\n")
            res = subprocess.run(cc + ["-o", exe, src], capture_output=True, text=True)
            if res.returncode == 0:
                break
            # A probe of something the headers do not define (a struct of a .c file, an enum
            # value this version lacks) is left out; an error anywhere else is fatal.
            bad = {int(m) for m in re.findall(r"probe\.c:(\d+):\d+: error", res.stderr)}
            if attempt == 1 or not bad or min(bad) < first_line:
                sys.exit(f"the release-header probe does not compile:\n{res.stderr[-3000:]}")
            body = [l if first_line + i not in bad else "" for i, l in enumerate(body)]
        out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    got = {"field": {}, "dbgpos": {}, "enum": {}, "bits": {}, "fact": {}}
    for line in out.splitlines():
        kind, name, *vals = line.split()
        got[kind][name] = [int(v) for v in vals] if kind == "bits" else int(vals[0])
    return got


def elf_section(path, wanted):
    """The bytes of one section of an ELF64 little-endian file."""
    import struct
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"{path} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def sh(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
    strtab = sh(shstrndx)
    for i in range(shnum):
        name_off, _, _, _, off, size, *_ = sh(i)
        start = strtab[4] + name_off
        name = data[start:data.index(b"\0", start)].decode()
        if name == wanted:
            return data[off:off + size]
    sys.exit(f"{path} has no {wanted} section")


# Structures defined in .c files are in no header, so the probes above cannot see them:
# the release interpreter itself checks them, on live objects, at our offsets.
# (field, how to read it: "ptr" (the object's id) | "u64" | "ssize" | "int" | "bit0", the
# object, what must be there)
LIVE_CHECKS = [
    ("range_start", "ptr", "range(3, 100, 7)", "o.start"),
    ("range_stop", "ptr", "range(3, 100, 7)", "o.stop"),
    ("range_step", "ptr", "range(3, 100, 7)", "o.step"),
    ("enum_iter", "ptr", "enumerate(IT)", "IT"),
    ("enum_index", "ssize", "enumerate(IT, 5)", "5"),
    ("zip_iters", "ptr", "zip([1], [2])", "o.__reduce__()[1]"),
    ("dictiter_dict", "ptr", "iter(D)", "D"),
    ("dictiter_used", "ssize", "iter(D)", "len(D)"),
    ("dictiter_len", "ssize", "iter(D)", "len(D)"),
    ("classmethod_callable", "ptr", "classmethod(F)", "F"),
    ("staticmethod_callable", "ptr", "staticmethod(F)", "F"),
    ("tuplegetter_index", "ssize", "NT.y", "1"),
    ("tuplegetter_doc", "ptr", "NT.y", "o.__doc__"),
    ("deque_maxlen", "ssize", "collections.deque([1], maxlen=7)", "7"),
    ("defaultdict_factory", "ptr", "collections.defaultdict(list)", "list"),
    ("filter_func", "ptr", "filter(F, IT)", "F"),
    ("filter_it", "ptr", "filter(F, IT)", "IT"),
    ("map_func", "ptr", "map(F, IT)", "F"),
    ("reversed_seq", "ptr", "reversed(L)", "L"),
    ("reversed_index", "ssize", "reversed(L)", "len(L) - 1"),
    ("count_cnt", "ssize", "itertools.count(5)", "5"),
    ("count_long_cnt", "ptr", "itertools.count(BIG)", "BIG"),
    ("partial_fn", "ptr", "functools.partial(F, 1, k=2)", "F"),
    ("partial_args", "ptr", "functools.partial(F, 1, k=2)", "o.args"),
    ("partial_kw", "ptr", "functools.partial(F, 1, k=2)", "o.keywords"),
    ("pattern_pattern", "ptr", "re.compile('a+b', re.I)", "o.pattern"),
    ("pattern_flags", "int", "re.compile('a+b', re.I)", "o.flags"),
    ("lru_func", "ptr", "functools.lru_cache(maxsize=77)(F)", "F"),
    ("lru_maxsize", "ssize", "functools.lru_cache(maxsize=77)(F)", "77"),
    ("lru_typed", "int", "functools.lru_cache(maxsize=77, typed=True)(F)", "1"),
    ("setiter_set", "ptr", "iter(S)", "S"),
    ("setiter_len", "ssize", "iter(S)", "len(S)"),
    ("lock_locked", "bit0", "HELD_LOCK", "1"),
    ("rlock_owner", "u64", "HELD_RLOCK", "threading.get_ident()"),
    ("islice_it", "ptr", "itertools.islice(IT, 1, 10, 2)", "IT"),
    ("islice_next", "ssize", "itertools.islice(IT, 1, 10, 2)", "1"),
    ("islice_stop", "ssize", "itertools.islice(IT, 1, 10, 2)", "10"),
    ("islice_step", "ssize", "itertools.islice(IT, 1, 10, 2)", "2"),
    ("repeat_element", "ptr", "itertools.repeat(BIG, 5)", "BIG"),
    ("repeat_cnt", "ssize", "itertools.repeat(BIG, 5)", "5"),
    ("cycle_it", "ptr", "itertools.cycle(IT)", "IT"),
    ("accumulate_it", "ptr", "itertools.accumulate(IT, F, initial=BIG)", "IT"),
    ("accumulate_binop", "ptr", "itertools.accumulate(IT, F, initial=BIG)", "F"),
    ("accumulate_initial", "ptr", "itertools.accumulate(IT, F, initial=BIG)", "BIG"),
    ("itemgetter_nitems", "ssize", "operator.itemgetter(1, 2, 3)", "3"),
    ("textio_buffer", "ptr", "TEXT", "o.buffer"),
    ("textio_encoding", "ptr", "TEXT", "o.encoding"),
    ("buffered_raw", "ptr", "TEXT.buffer", "o.raw"),
    ("fileio_fd", "int", "TEXT.buffer.raw", "o.fileno()"),
    ("bytesio_pos", "ssize", "BYTES", "2"),
    ("bytesio_string_size", "ssize", "BYTES", "5"),
]

LIVE_SCRIPT = r"""
import collections, ctypes, functools, io, itertools, json, operator, os, re, sys, threading
offsets, checks = json.loads(sys.argv[1])
def F(*a, **k): return a
IT = iter([1, 2, 3]); D = {"a": 1, "b": 2}; L = [1, 2, 3, 4]; S = {1, 2, 3}; BIG = 10 ** 30
NT = collections.namedtuple("NT", "x y")
HELD_LOCK = threading.Lock(); HELD_LOCK.acquire()
HELD_RLOCK = threading.RLock(); HELD_RLOCK.acquire()
TEXT = open(os.devnull, "w", encoding="utf-8")
BYTES = io.BytesIO(b"hello"); BYTES.seek(2)
keep, bad = [], []
for field, how, make, want in checks:
    o = eval(make); keep.append(o)
    expect = eval(want)
    at = id(o) + offsets[field]
    if how == "ptr":
        got, expect = ctypes.c_void_p.from_address(at).value, id(expect)
    elif how == "u64":
        got = ctypes.c_uint64.from_address(at).value
    elif how == "ssize":
        got = ctypes.c_ssize_t.from_address(at).value
    elif how == "int":
        got = ctypes.c_int.from_address(at).value
    else:
        got = ctypes.c_ubyte.from_address(at).value & 1
    if got != expect:
        bad.append(f"{field}: {make} at +{offsets[field]} holds {got!r}, not {want} ({expect!r})")
print(json.dumps(bad))
"""


def live_check(chroot, minor_version, fields):
    """Run LIVE_CHECKS in the release interpreter (its host copy made by scripts/sid-pythons)."""
    exe = os.path.join(chroot, "usr", "bin", f"python{minor_version}-host")
    if not os.access(exe, os.X_OK):
        sys.exit(f"{exe} is missing: run scripts/sid-pythons")
    checks = [c for c in LIVE_CHECKS if fields.get(c[0]) is not None]
    arg = json.dumps([{c[0]: fields[c[0]] for c in checks}, checks])
    res = subprocess.run([exe, "-I", "-c", LIVE_SCRIPT, arg], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"the live layout check in {exe} failed:\n{res.stderr[-3000:]}")
    return len(checks), json.loads(res.stdout)


def debian_layout(chroot, minor_version):
    import glob, struct
    nodot = minor_version.replace(".", "")
    dbg = os.path.join(chroot, "usr", "bin", f"python{minor_version}d")
    release = os.path.join(chroot, "usr", "bin", f"python{minor_version}")
    for f in (dbg, release):
        if not os.path.isfile(f):
            sys.exit(f"{f} is missing (python{minor_version}-dbg / python{minor_version} in the chroot)")
    dynload = os.path.join(chroot, "usr", "lib", f"python{minor_version}", "lib-dynload")
    extra = []
    for ext in EXTENSIONS:
        # Built into python3.Xd unless it ships as a module of its own.
        for so in glob.glob(os.path.join(dynload, f"{ext}.cpython-{nodot}d-*.so")):
            extra += ["-ex", f"add-symbol-file {so}"]
    data = run_gdb(dbg, extra)
    patchlevel = open(os.path.join(chroot, "usr", "include", f"python{minor_version}", "patchlevel.h")).read()
    m = re.search(r'#define PY_VERSION\s+"(\d+\.\d+\.\d+)"', patchlevel)
    if not m:
        sys.exit(f"no PY_VERSION in the chroot's python{minor_version}/patchlevel.h")
    version = m.group(1)

    probe = probe_headers(chroot, minor_version, data)
    # The same probe under python3.Xd's configuration tells a Py_DEBUG-only difference
    # (taken from the release side) from a disagreement (fatal).
    debug_probe = probe_headers(chroot, minor_version, data, debug=True)
    fail, from_release = [], []
    for name, _ in FIELDS:
        ours, theirs = data["fields"].get(name), probe["field"].get(name)
        if theirs is None or ours == theirs:
            continue
        if data["spec"][name].startswith("sizeof:") or debug_probe["field"].get(name) == ours:
            data["fields"][name] = theirs  # sizes and Py_DEBUG-dependent offsets: the release build's
            from_release.append(f"{name} {ours}->{theirs}")
        else:
            fail.append(f"{name} ({data['spec'][name]}): {ours} in python{minor_version}d's DWARF, "
                        f"{theirs} in the release headers, {debug_probe['field'].get(name)} in them "
                        f"configured as python{minor_version}d")
    for e in ENUMS:
        ours, theirs = data["enums"].get(e), probe["enum"].get(e)
        if ours != theirs:
            fail.append(f"enum {e}: {ours} in the DWARF, {theirs} in the release headers")
    minor = int(minor_version.split(".")[1])
    for fact, rust_type, _, by_minor in FACTS:
        if fact in FACT_MACROS:
            ours, theirs = by_minor.get(minor), probe["fact"].get(fact)
            if ours != theirs:
                fail.append(f"fact {fact}: {ours} in gen_layouts.FACTS, {theirs} ({FACT_MACROS[fact]}) in the release headers")
    for bit, (pos, n) in probe["bits"].items():
        if data["bits"].get(bit) != [pos, n]:
            fail.append(f"PyASCIIObject.state.{bit}: {data['bits'].get(bit)} in the DWARF, {[pos, n]} in the release headers")
    for ours, pos in probe["dbgpos"].items():
        if data["debug_offsets"].get(ours) != pos:
            fail.append(f"_Py_DebugOffsets entry for {ours}: {data['debug_offsets'].get(ours)} in the DWARF, "
                        f"{pos} in the release headers")
    live_count, live_bad = live_check(chroot, minor_version, data["fields"])
    fail += [f"live check: {b}" for b in live_bad]
    # The release binary's own table: what the interpreter that runs says about itself.
    table = elf_section(release, ".PyRuntime")
    if table[:8] != b"xdebugpy":
        fail.append(f"{release}: .PyRuntime does not start with the _Py_DebugOffsets cookie")
    else:
        for ours, pos in data["debug_offsets"].items():
            theirs, = struct.unpack_from("<Q", table, pos)
            if data["fields"].get(ours) != theirs:
                fail.append(f"{ours}: {data['fields'].get(ours)} in pyteleport's table, {theirs} in the "
                            f"_Py_DebugOffsets of {release}")
        ft = data["fields"].get("debug_offsets_free_threaded")
        if ft is not None and struct.unpack_from("<Q", table, ft)[0] != 0:
            fail.append(f"{release} is a free-threaded build")
    if fail:
        sys.exit(f"CPython {version} (Debian, {chroot}): the layout sources disagree (python3.Xd DWARF, release headers, release _Py_DebugOffsets, FACTS):\n  "
                 + "\n  ".join(fail))
    print(f"CPython {version}: {len(probe['field'])} fields, {len(probe['enum'])} enum values and "
          f"{len(probe['dbgpos'])} _Py_DebugOffsets entries checked against the release headers, "
          f"{len(data['debug_offsets'])} fields against the release binary's _Py_DebugOffsets, "
          f"{live_count} fields of .c structures on live objects of the release interpreter; "
          f"release values of Py_DEBUG-dependent fields: {', '.join(from_release) or 'none'}", file=sys.stderr)
    source = (f"Debian's python{minor_version}d (DWARF), checked against the release headers and the "
              f"release binary's _Py_DebugOffsets")
    return version, data, source


def write_struct(dest):
    lines = ["// Generated by scripts/gen_layouts.py. Do not edit.", "use super::UnicodeStateBits;",
             "/// Byte offsets of the interpreter structures pyteleport reads, for one CPython version.",
             "/// A field some version does not have is an `Option` (None there).",
             "#[derive(Debug, Clone, Copy)]",
             "pub struct Layout {",
             "    pub version: (u8, u8, u8),"]
    for n, alts in FIELDS:
        lines.append(f"    /// {' or '.join(alts)}")
        lines.append(f"    pub {n}: {'Option<usize>' if n in OPTIONAL else 'usize'},")
    for e in ENUMS:
        if e in OPTIONAL_ENUMS:
            lines.append(f"    /// value of {e} (None if the version has none)")
            lines.append(f"    pub {e.lower()}: Option<i32>,")
        else:
            lines.append(f"    /// value of {e}")
            lines.append(f"    pub {e.lower()}: i32,")
    for n, rust_type, doc, _ in FACTS:
        lines.append(f"    /// {doc}")
        lines.append(f"    pub {n}: {rust_type},")
    lines += ["    pub unicode_state: UnicodeStateBits,",
              "    /// (field, position of its entry in _Py_DebugOffsets, our offset): checked at run time.",
              "    pub debug_offsets: &'static [(&'static str, usize, usize)],",
              "}"]
    with open(os.path.join(dest, "fields.rs"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def derive(data):
    """Rules the debug info alone cannot state."""
    if data["fields"].get("interp_atexit_ncallbacks") is None:
        # 3.14+ keeps atexit callbacks in a list of tuples; its `atexit_callback` struct is
        # the C-level one (func, data, next), not a Python callback.
        for n in ("atexit_callback_func", "atexit_callback_args", "atexit_callback_kwargs"):
            data["fields"][n] = None


def write_rust(dest, version, data, source=None):
    derive(data)
    major, minor, patch = (int(x) for x in version.split(".")[:3])
    name = f"v{major}_{minor}"
    lines = [
        f"// Generated by scripts/gen_layouts.py from the debug info of CPython {version}"
        + (f" ({source})" if source else "") + ". Do not edit.",
        "use super::{Layout, UnicodeStateBits};",
        "",
        f"pub const LAYOUT: Layout = Layout {{",
        f"    version: ({major}, {minor}, {patch}),",
    ]
    for n, _ in FIELDS:
        v = data["fields"][n]
        if n in OPTIONAL:
            lines.append(f"    {n}: {'None' if v is None else f'Some({v})'},")
        elif v is None:
            sys.exit(f"{n} does not exist in CPython {version}: list it in OPTIONAL")
        else:
            lines.append(f"    {n}: {v},")
    bits = data["bits"]
    for e in ENUMS:
        v = data["enums"].get(e)
        if e in OPTIONAL_ENUMS:
            lines.append(f"    {e.lower()}: {'None' if v is None else f'Some({v})'},")
        elif v is None:
            sys.exit(f"{e} does not exist in CPython {version}: list it in OPTIONAL_ENUMS")
        else:
            lines.append(f"    {e.lower()}: {v},")
    for n, rust_type, _, by_minor in FACTS:
        default = False if rust_type == "bool" else None
        lines.append(f"    {n}: {fact_value(rust_type, by_minor.get(minor, default))},")
    lines.append("    unicode_state: UnicodeStateBits {")
    for k in ("interned", "kind", "compact", "ascii"):
        pos, size = bits[k]
        lines.append(f"        {k}: ({pos}, {size}),")
    lines.append("    },")
    checks = data["debug_offsets"]
    lines.append("    debug_offsets: &[")
    for ours, _ in DEBUG_OFFSET_CHECKS:
        if ours in checks and data["fields"].get(ours) is not None:
            lines.append(f"        (\"{ours}\", {checks[ours]}, {data['fields'][ours]}),")
    lines.append("    ],")
    lines.append("};")
    with open(os.path.join(dest, f"{name}.rs"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {name}.rs")


if __name__ == "__main__":
    if os.environ.get("GEN_LAYOUTS_IN_GDB"):
        in_gdb()
    else:
        main()
