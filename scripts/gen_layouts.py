#!/usr/bin/env python3
"""Generate src/layouts/v3_XX.rs: the byte offsets pyteleport reads, per CPython version.

Offsets come from the DWARF debug info of each libpython (gdb's Python API), so the
tables are data, regenerated rather than hand-edited:

    scripts/gen_layouts.py /root/.pyenv/versions/3.11.7 [...]

Each field lists alternatives "type:member.path"; the first that exists in that
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
    ("lock_locked", ["lockobject:locked"]),
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
    # atexit.register()ed callbacks: an array of pointers (NULL where unregistered)
    ("interp_atexit_callbacks", ["PyInterpreterState:atexit.callbacks"]),
    ("interp_atexit_ncallbacks", ["PyInterpreterState:atexit.ncallbacks"]),
    ("atexit_callback_func", ["atexit_py_callback:func", "atexit_callback:func"]),
    ("atexit_callback_args", ["atexit_py_callback:args", "atexit_callback:args"]),
    ("atexit_callback_kwargs", ["atexit_py_callback:kwargs", "atexit_callback:kwargs"]),
    ("rlock_owner", ["rlockobject:rlock_owner"]),
    ("rlock_count", ["rlockobject:rlock_count"]),
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
    "debug_offsets_size",  # 3.13+
    "runtime_signals_pending", "interp_eval_breaker", "tstate_eval_breaker",
    "stringio_writer_buffer", "stringio_writer_pos",  # 3.12+ _PyUnicodeWriter
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
     "(the pre-header: _PyObject_ManagedDictPointer)", {11: -24, 12: -24, 13: -24}),
    ("managed_values_offset", "Option<i64>",
     "where such an object keeps its split values pointer, when in a word of its own "
     "(3.11 _PyObject_ValuesPointer)", {11: -32}),
    ("managed_dict_tags_values", "bool",
     "the managed dict word holds a values pointer minus one when its low bit is set "
     "(3.12 PyDictOrValues)", {12: True}),
    ("tpflags_inline_values", "Option<u64>",
     "Py_TPFLAGS_INLINE_VALUES: the values array follows the object at tp_basicsize (3.13+)", {13: 1 << 2}),
    ("init_cleanup_shim", "bool",
     "__init__ calls go through the _Py_InitCleanup shim frame (3.13+)", {13: True}),
    ("call_function_ex_pops_early", "bool",
     "CALL_FUNCTION_EX pops its argument tuple (and kwargs) before the call is made: during it "
     "those stack slots are stale (3.11)", {11: True}),
]


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
]


# Enumeration values some version lacks are generated as Option<i32>.
OPTIONAL_ENUMS = {"FRAME_SUSPENDED_YIELD_FROM", "FRAME_OWNED_BY_CSTACK"}

ENUMS = ["FRAME_CREATED", "FRAME_SUSPENDED", "FRAME_SUSPENDED_YIELD_FROM", "FRAME_EXECUTING",
         "FRAME_COMPLETED", "FRAME_CLEARED", "FRAME_OWNED_BY_THREAD", "FRAME_OWNED_BY_GENERATOR",
         "FRAME_OWNED_BY_FRAME_OBJECT", "FRAME_OWNED_BY_CSTACK"]


def in_gdb():
    import gdb

    def resolve(spec):
        if spec.startswith("sizeof:"):
            return gdb.lookup_type(spec[7:]).strip_typedefs().sizeof
        tname, path = spec.split(":")
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
        return off

    def first(alts):
        for a in alts:
            try:
                return resolve(a)
            except Exception:
                pass
        return None

    out = {"fields": {n: first(a) for n, a in FIELDS}, "debug_offsets": {}, "bits": {}}
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


def main():
    prefixes = sys.argv[1:]
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
        res = subprocess.run(["gdb", "-batch", *extra, "-x", os.path.abspath(__file__), lib],
                             capture_output=True, text=True, env={**os.environ, "GEN_LAYOUTS_IN_GDB": "1"})
        line = [l for l in res.stdout.splitlines() if l.startswith("LAYOUT-JSON ")]
        if not line:
            sys.exit(f"gdb failed for {lib}:\n{res.stderr}")
        data = json.loads(line[0][len("LAYOUT-JSON "):])
        write_rust(dest, version, data)
    write_struct(dest)


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


def write_rust(dest, version, data):
    major, minor, patch = (int(x) for x in version.split(".")[:3])
    name = f"v{major}_{minor}"
    lines = [
        f"// Generated by scripts/gen_layouts.py from the debug info of CPython {version}. Do not edit.",
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
