#!/usr/bin/python3
"""MongoDB wire-protocol stand-in for tests on machines without a mongod.

Built on two Debian packages:
  * python3-mockupdb  -- socket server, OP_MSG / OP_QUERY request parsing and
                         reply framing (MockupDB, OpMsg, Command, OpMsgReply,
                         OpReply);
  * python3-mongomock -- the in-memory data store, query matching, update
                         operators, aggregation.

This file maps MongoDB commands (as sent by the Node driver) onto mongomock's
pymongo-shaped API and keeps the few things mongomock lacks: real cursors,
E11000 details, naive transactions, persistence and a TTL sweep.

Run with Debian's interpreter (/usr/bin/python3), see README.md.
"""

import argparse
import collections
import copy
import datetime
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback

import bson
from bson import codec_options as _bson_codec_options
from bson.binary import UuidRepresentation
from bson.int64 import Int64
from bson.decimal128 import Decimal128
from bson.objectid import ObjectId

import mockupdb
import mongomock
from mongomock import aggregate as mm_aggregate
from mongomock import collection as mm_collection
from mongomock import helpers as mm_helpers
from mongomock.filtering import filter_applies
from mongomock.store import CollectionStore
from pymongo.errors import (BulkWriteError, CollectionInvalid,
                            DuplicateKeyError, OperationFailure, WriteError)

SERVER_VERSION = '7.0.0'
MAX_WIRE_VERSION = 21          # MongoDB 7.0; the Node driver 6.x/7.x accepts 8..29
MIN_WIRE_VERSION = 0
MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48000000
MAX_WRITE_BATCH_SIZE = 100000
DEFAULT_BATCH_SIZE = 101
BATCH_BYTES_LIMIT = 8 * 1024 * 1024   # keep each reply well below 16 MiB
CURSOR_IDLE_SECONDS = 600
SAVE_DEBOUNCE_SECONDS = 0.25
TTL_SWEEP_SECONDS = 1.0
TRANSACTION_LIFETIME_SECONDS = 60   # mongod's transactionLifetimeLimitSeconds

# Decode requests into plain dicts and keep Binary subtypes 3/4 as Binary
# (the pymongo 3 default would turn subtype 4 into uuid.UUID and re-encode it
# as subtype 3).  mockupdb looks this module global up at parse time.
CODEC = _bson_codec_options.CodecOptions(
    document_class=dict, uuid_representation=UuidRepresentation.UNSPECIFIED)
mockupdb.CODEC_OPTIONS = CODEC

# Let mongomock behave like a 7.0 server (e.g. empty "$set: {}" allowed).
mongomock.SERVER_VERSION = SERVER_VERSION

CODE_NAMES = {
    1: 'InternalError', 2: 'BadValue', 9: 'FailedToParse', 14: 'TypeMismatch',
    20: 'IllegalOperation', 26: 'NamespaceNotFound', 27: 'IndexNotFound',
    43: 'CursorNotFound', 48: 'NamespaceExists', 59: 'CommandNotFound',
    66: 'ImmutableField', 67: 'CannotCreateIndex', 72: 'InvalidOptions',
    73: 'InvalidNamespace', 85: 'IndexOptionsConflict', 86: 'IndexKeySpecsConflict',
    115: 'CommandNotSupported', 238: 'NotImplemented', 251: 'NoSuchTransaction',
    11000: 'DuplicateKey',
}


def errmsg_of(err):
    """pymongo's str(error) appends ', full error: {...}'; keep the message."""
    details = getattr(err, 'details', None)
    if isinstance(details, dict) and isinstance(details.get('errmsg'), str):
        return details['errmsg']
    return str(err)


def log(msg):
    sys.stderr.write('[mongo-standin] %s\n' % msg)
    sys.stderr.flush()


class CommandError(Exception):
    def __init__(self, code, errmsg, **extra):
        Exception.__init__(self, errmsg)
        self.code = code
        self.errmsg = errmsg
        self.extra = extra

    def to_doc(self):
        doc = {'ok': 0.0, 'errmsg': self.errmsg, 'code': self.code,
               'codeName': CODE_NAMES.get(self.code, 'Error')}
        doc.update(self.extra)
        return doc


# ---------------------------------------------------------------------------
# mongomock patches
# ---------------------------------------------------------------------------

def _same_value(a, b):
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return a == b
    except Exception:  # pragma: no cover - exotic types
        return False


def _format_key_value(values):
    parts = []
    for k, v in values.items():
        if isinstance(v, str):
            parts.append('%s: "%s"' % (k, v))
        elif v is None:
            parts.append('%s: null' % k)
        else:
            parts.append('%s: %r' % (k, v))
    return '{ ' + ', '.join(parts) + ' }'


def make_dup_error(full_name, index_name, key_pattern, key_value):
    msg = ('E11000 duplicate key error collection: %s index: %s dup key: %s'
           % (full_name, index_name, _format_key_value(key_value)))
    return DuplicateKeyError(msg, 11000, {
        'errmsg': msg, 'index': index_name, 'keyPattern': key_pattern, 'keyValue': key_value})


def _key_tuple(doc, key_names, dotted):
    if not dotted:
        return tuple(doc.get(k) for k in key_names)
    values = []
    for key in key_names:
        try:
            values.append(mm_helpers.get_value_by_dot(doc, key))
        except (KeyError, TypeError, IndexError):
            values.append(None)
    return tuple(values)


def _ensure_uniques(self, new_data):
    """Replacement for mongomock's check: same semantics (missing == null,
    sparse, partialFilterExpression), but a linear scan without re-running the
    query engine per document, and the error names the violated index and key
    (keyPattern / keyValue) like mongod does."""
    store = self._store
    for name, index in list(store.indexes.items()):
        if not index.get('unique'):
            continue
        keys = index['key']
        key_names = [k for k, _direction in keys]
        dotted = any('.' in k for k in key_names)
        sparse = index.get('sparse')
        pfe = index.get('partialFilterExpression')
        mine = _key_tuple(new_data, key_names, dotted)
        if sparse and all(v is None for v in mine):
            continue
        if pfe is not None and not filter_applies(pfe, new_data):
            continue
        new_id = new_data.get('_id')
        if not dotted and len(key_names) == 1:
            # fast path for the common single-field index
            field, wanted = key_names[0], mine[0]
            candidates = [d for d in store._documents.values() if d.get(field) == wanted]
        else:
            candidates = store._documents.values()
        for doc in list(candidates):
            if doc is new_data:
                continue
            other = _key_tuple(doc, key_names, dotted)
            if other != mine:
                continue
            if not all(_same_value(a, b) for a, b in zip(mine, other)):
                continue
            if _same_value(doc.get('_id'), new_id):
                continue
            if pfe is not None and not filter_applies(pfe, doc):
                continue
            raise make_dup_error(self.full_name, name, dict(keys),
                                 dict(zip(key_names, mine)))


mm_collection.Collection._ensure_uniques = _ensure_uniques

# mongomock keeps documents in an OrderedDict; iterating its values re-hashes
# every key (ObjectId.__hash__ is Python code), which dominates every scan.
# A plain dict keeps insertion order as well and iterates without hashing.
_orig_store_init = CollectionStore.__init__
_orig_store_drop = CollectionStore.drop


def _store_init(self, name):
    _orig_store_init(self, name)
    self._documents = {}


def _store_drop(self):
    _orig_store_drop(self)
    self._documents = {}


CollectionStore.__init__ = _store_init
CollectionStore.drop = _store_drop

# mongomock removes expired documents by scanning the whole collection on every read and write of a
# collection with a TTL index: quadratic as tokens pile up (the benchmark spent 90% of the stand-in's time
# there). A mongod's TTL monitor removes them once a minute. Here the sweeper thread removes them every
# TTL_SWEEP_SECONDS, and requests at most every EXPIRY_CHECK_SECONDS: an expired document may be seen for
# that long, far less than on a real server (Gatehouse checks expiry when it reads, as it must there).
EXPIRY_CHECK_SECONDS = 0.25
_orig_remove_expired = CollectionStore._remove_expired_documents


def _remove_expired_documents(self, force=False):
    if not self._ttl_indexes:
        return
    now = time.monotonic()
    if not force and now - getattr(self, '_expiry_checked_at', float('-inf')) < EXPIRY_CHECK_SECONDS:
        return
    self._expiry_checked_at = now
    _orig_remove_expired(self)


CollectionStore._remove_expired_documents = _remove_expired_documents

_SIMPLE_TYPES = (str, int, float, ObjectId, datetime.datetime, bytes)


def _simple_equalities(flt):
    """Top-level {field: scalar} pairs of a filter (no dots, no operators)."""
    pairs = []
    for key, value in flt.items():
        if key.startswith('$') or '.' in key:
            continue
        if isinstance(value, _SIMPLE_TYPES):
            pairs.append((key, value))
    return pairs


def _id_in_list(flt):
    """The values of a top-level {_id: {$in: [scalars]}} (the only operator), or None."""
    if not isinstance(flt, dict):
        return None
    cond = flt.get('_id')
    if not isinstance(cond, dict) or list(cond.keys()) != ['$in'] or not isinstance(cond['$in'], list):
        return None
    if not all(isinstance(v, _SIMPLE_TYPES) for v in cond['$in']):
        return None
    return cond['$in']


def _may_equal(stored, wanted):
    # a superset of what filter_applies accepts for {field: scalar}
    if isinstance(stored, (list, Decimal128)):
        return True
    try:
        return stored == wanted
    except Exception:
        return True


def _iter_documents(self, filter):
    """mongomock's scan, with an exact-match pre-selection: a direct _id
    lookup and a cheap equality check before the (slow) full matcher."""
    store = self._store
    store._remove_expired_documents()
    docs = store._documents
    if not docs:
        filter_applies(filter, {})   # still validate the filter
        return iter(())
    pairs = _simple_equalities(filter) if isinstance(filter, dict) else []
    id_pairs = [v for k, v in pairs if k == '_id']
    id_in = _id_in_list(filter)
    if id_in is not None and not id_pairs:
        # {_id: {$in: [...]}} as a mongod answers it, through the _id index
        candidates = []
        for wanted in id_in:
            try:
                doc = docs.get(wanted)
            except TypeError:
                candidates = list(docs.values())
                break
            if doc is not None and all(doc is not c for c in candidates):
                candidates.append(doc)
    elif id_pairs:
        try:
            doc = docs.get(id_pairs[0])
        except TypeError:
            doc = None
            candidates = list(docs.values())
        else:
            candidates = [doc] if doc is not None else []
    else:
        candidates = list(docs.values())
    for field, wanted in pairs:
        if field != '_id':
            candidates = [d for d in candidates if _may_equal(d.get(field), wanted)]
    return (d for d in candidates if filter_applies(filter, d))


mm_collection.Collection._iter_documents = _iter_documents


def _mul_updater(doc, field_name, value):
    if isinstance(doc, dict):
        doc[field_name] = doc.get(field_name, 0) * value
    elif isinstance(doc, list):
        idx = int(field_name)
        doc[idx] = doc[idx] * value


mm_collection._updaters.setdefault('$mul', _mul_updater)


def _unset_stage(collection, database, options):
    fields = [options] if isinstance(options, str) else list(options)
    return mm_aggregate._handle_project_stage(collection, database, {f: 0 for f in fields})


def _replace_with_stage(collection, database, options):
    return mm_aggregate._handle_replace_root_stage(collection, database, {'newRoot': options})


if mm_aggregate._PIPELINE_HANDLERS.get('$unset') is None:
    mm_aggregate._PIPELINE_HANDLERS['$unset'] = _unset_stage
if mm_aggregate._PIPELINE_HANDLERS.get('$replaceWith') is None:
    mm_aggregate._PIPELINE_HANDLERS['$replaceWith'] = _replace_with_stage


def _aggregate_input(coll, pipeline):
    """The documents a pipeline starts from, and the stages left to run. A leading $match is answered
    with find() (the _id/equality pre-selection above) instead of copying the whole collection first,
    as mongomock does; a real mongod likewise uses an index for a leading $match."""
    if pipeline and len(pipeline[0]) == 1 and '$match' in pipeline[0]:
        return list(coll.find(pipeline[0]['$match'])), pipeline[1:]
    return list(coll.find()), pipeline


def _union_with_stage(collection, database, options):
    """$unionWith (MongoDB 4.4+): the documents so far, then another collection's (through its pipeline)."""
    spec = {'coll': options} if isinstance(options, str) else options
    if not isinstance(spec, dict) or not isinstance(spec.get('coll'), str):
        raise mongomock.OperationFailure('$unionWith needs a collection name')
    docs, rest = _aggregate_input(database.get_collection(spec['coll']), spec.get('pipeline') or [])
    return list(collection) + list(mm_aggregate.process_pipeline(docs, database, rest, None))


if mm_aggregate._PIPELINE_HANDLERS.get('$unionWith') is None:
    mm_aggregate._PIPELINE_HANDLERS['$unionWith'] = _union_with_stage


# ---------------------------------------------------------------------------
# Snapshots (transactions) and persistence
# ---------------------------------------------------------------------------

def _doc_key(_id):
    return mm_helpers.hashdict(_id) if isinstance(_id, dict) else _id


def snapshot_db(db_store):
    snap = {}
    for name, cs in db_store._collections.items():
        snap[name] = {
            'docs': copy.deepcopy(list(cs._documents.items())),
            'indexes': copy.deepcopy(cs.indexes),
            'created': bool(cs._is_force_created),
        }
    return snap


def restore_collection(name, data):
    cs = CollectionStore(name)
    for key, doc in data['docs']:
        cs._documents[key] = doc
    cs.indexes = data['indexes']
    cs._ttl_indexes = {n: i for n, i in cs.indexes.items()
                       if i.get('expireAfterSeconds') is not None}
    cs._is_force_created = data['created']
    return cs


def restore_db(db_store, snap):
    db_store._collections = {name: restore_collection(name, copy.deepcopy(data))
                             for name, data in snap.items()}


# ---------------------------------------------------------------------------
# The stand-in
# ---------------------------------------------------------------------------

def now_utc():
    now = datetime.datetime.utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class StandIn(object):
    READ_ONLY = frozenset([
        'hello', 'ismaster', 'isMaster', 'ping', 'buildInfo', 'buildinfo',
        'getParameter', 'serverStatus', 'hostInfo', 'whatsmyuri', 'getCmdLineOpts',
        'listDatabases', 'listCollections', 'listIndexes', 'find', 'getMore',
        'killCursors', 'count', 'distinct', 'endSessions', 'killSessions',
        'refreshSessions', 'startSession', 'dbStats', 'collStats',
        'connectionStatus', 'getLog', 'getFreeMonitoringStatus', 'saslStart',
        'explain',
    ])

    def __init__(self, data_file=None):
        self.lock = threading.RLock()
        self.client = mongomock.MongoClient()
        self.store = self.client._store
        self.cursors = {}
        self.txns = {}                 # session key -> {'txnNumber', 'snaps'}
        self.conn_ids = {}
        self.next_conn_id = 1
        self.started = time.time()
        self.data_file = data_file
        self.dirty = threading.Event()
        self.save_lock = threading.Lock()
        self.stopping = threading.Event()
        self.handlers = {
            'hello': self.cmd_hello, 'isMaster': self.cmd_hello, 'ismaster': self.cmd_hello,
            'ping': self.cmd_ok, 'buildInfo': self.cmd_build_info,
            'buildinfo': self.cmd_build_info, 'getParameter': self.cmd_get_parameter,
            'serverStatus': self.cmd_server_status, 'hostInfo': self.cmd_host_info,
            'whatsmyuri': self.cmd_whatsmyuri, 'getCmdLineOpts': self.cmd_cmdline,
            'connectionStatus': self.cmd_connection_status,
            'endSessions': self.cmd_end_sessions, 'killSessions': self.cmd_end_sessions,
            'refreshSessions': self.cmd_ok, 'startSession': self.cmd_start_session,
            'killCursors': self.cmd_kill_cursors, 'listDatabases': self.cmd_list_databases,
            'dropDatabase': self.cmd_drop_database, 'insert': self.cmd_insert,
            'find': self.cmd_find, 'getMore': self.cmd_get_more, 'update': self.cmd_update,
            'delete': self.cmd_delete, 'findAndModify': self.cmd_find_and_modify,
            'findandmodify': self.cmd_find_and_modify, 'count': self.cmd_count,
            'distinct': self.cmd_distinct, 'aggregate': self.cmd_aggregate,
            'create': self.cmd_create, 'drop': self.cmd_drop,
            'listCollections': self.cmd_list_collections, 'listIndexes': self.cmd_list_indexes,
            'createIndexes': self.cmd_create_indexes, 'dropIndexes': self.cmd_drop_indexes,
            'deleteIndexes': self.cmd_drop_indexes, 'collMod': self.cmd_ok,
            'renameCollection': self.cmd_rename_collection, 'dbStats': self.cmd_db_stats,
            'collStats': self.cmd_coll_stats,
            'commitTransaction': self.cmd_commit_transaction,
            'abortTransaction': self.cmd_abort_transaction,
        }
        if data_file:
            self.load()

    # -- helpers ------------------------------------------------------------

    def coll(self, db, name):
        if not isinstance(name, str) or not name:
            raise CommandError(73, 'Invalid collection name: %r' % (name,))
        return self.client[db][name]

    def coll_store(self, db, name):
        return self.store[db]._collections.get(name)

    def coll_exists(self, db, name):
        cs = self.coll_store(db, name)
        return bool(cs is not None and cs.is_created)

    @staticmethod
    def batch(docs, limit_count):
        """Take up to limit_count docs (None = default byte-limited) off docs."""
        out = []
        size = 0
        while docs and (limit_count is None or len(out) < limit_count):
            doc = docs[0]
            doc_size = len(bson.BSON.encode(doc, codec_options=CODEC))
            if out and size + doc_size > BATCH_BYTES_LIMIT:
                break
            out.append(docs.popleft())
            size += doc_size
        return out

    def make_cursor(self, ns, docs, batch_size, single_batch=False, key='firstBatch'):
        docs = collections.deque(docs)
        first = self.batch(docs, batch_size if batch_size else
                           (None if single_batch else DEFAULT_BATCH_SIZE))
        cursor_id = 0
        if docs and not single_batch:
            cursor_id = random.randint(1, 2 ** 62)
            self.cursors[cursor_id] = {'ns': ns, 'docs': docs, 'used': time.time()}
        return {'cursor': {key: first, 'id': Int64(cursor_id), 'ns': ns}, 'ok': 1.0}

    def mark_dirty(self):
        if self.data_file:
            self.dirty.set()

    # -- dispatch -----------------------------------------------------------

    def handle_request(self, request):
        """mockupdb autoresponder: always answers, never raises."""
        try:
            reply_doc = self.execute(request)
        except Exception as exc:  # last resort, keep the connection alive
            traceback.print_exc(file=sys.stderr)
            reply_doc = CommandError(1, 'stand-in internal error: %s' % exc).to_doc()
        if isinstance(request, mockupdb.OpMsg):
            if request.flags & mockupdb.OP_MSG_FLAGS['moreToCome']:
                return True  # unacknowledged write: no reply
            reply = mockupdb.OpMsgReply(reply_doc)
        elif isinstance(request, mockupdb.Command):
            reply = mockupdb.OpReply(reply_doc)
        elif isinstance(request, mockupdb.OpQuery):
            reply = mockupdb.OpReply({'$err': 'legacy OP_QUERY find is not supported',
                                      'code': 352}, flags=mockupdb.REPLY_FLAGS['QueryFailure'])
        else:
            log('ignoring legacy opcode %r' % type(request).__name__)
            return True
        try:
            data = reply.reply_bytes(request)
        except Exception as exc:  # e.g. a value BSON cannot encode
            traceback.print_exc(file=sys.stderr)
            err = CommandError(1, 'stand-in could not encode the reply: %s' % exc).to_doc()
            reply = (mockupdb.OpMsgReply(err) if isinstance(request, mockupdb.OpMsg)
                     else mockupdb.OpReply(err))
            data = reply.reply_bytes(request)
        try:
            # Send directly instead of request.replies(): that one formats a
            # repr() of every reply for its verbose log, which is costly.
            request._client.sendall(data)
        except (socket.error, OSError):
            pass
        return True

    def execute(self, request):
        if not getattr(request, 'is_command', False) or not request.docs:
            return CommandError(352, 'unsupported legacy opcode').to_doc()
        cmd = request.doc
        if not cmd:
            return CommandError(59, 'empty command').to_doc()
        name = next(iter(cmd))
        db = cmd.get('$db') or request.namespace or 'test'
        if name in ('hello', 'isMaster', 'ismaster'):
            return self.cmd_hello(cmd, db, request)
        handler = self.handlers.get(name)
        if handler is None:
            return CommandError(59, "no such command: '%s'" % name).to_doc()
        with self.lock:
            try:
                self.before_command(cmd, name, db)
                result = handler(cmd, db, request)
            except CommandError as err:
                result = err.to_doc()
            except DuplicateKeyError as err:
                result = self.dup_error_doc(err, cmd, db)
            except (OperationFailure, WriteError, BulkWriteError) as err:
                result = CommandError(err.code or 2, errmsg_of(err)).to_doc()
            except NotImplementedError as err:
                result = CommandError(238, 'not supported by the stand-in: %s' % err).to_doc()
            except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
                result = CommandError(2, '%s: %s' % (type(err).__name__, err)).to_doc()
            if name not in self.READ_ONLY:
                self.mark_dirty()
            return result

    def dup_error_doc(self, err, cmd, db, doc=None):
        details = err.details or {}
        if 'keyPattern' in details:
            return {'ok': 0.0, 'errmsg': errmsg_of(err), 'code': 11000, 'codeName': 'DuplicateKey',
                    'keyPattern': details['keyPattern'], 'keyValue': details['keyValue']}
        _id = doc.get('_id') if isinstance(doc, dict) else None
        coll_name = next(iter(cmd.values())) if cmd else ''
        e = make_dup_error('%s.%s' % (db, coll_name), '_id_', {'_id': 1}, {'_id': _id})
        return self.dup_error_doc(e, cmd, db)

    # -- transactions -------------------------------------------------------

    @staticmethod
    def session_key(cmd):
        lsid = cmd.get('lsid')
        if not isinstance(lsid, dict) or 'id' not in lsid:
            return None
        return bson.BSON.encode({'id': lsid['id']}, codec_options=CODEC)

    def before_command(self, cmd, name, db):
        if name in ('commitTransaction', 'abortTransaction'):
            return
        if cmd.get('autocommit') is not False or 'txnNumber' not in cmd:
            return
        key = self.session_key(cmd)
        if key is None:
            return
        txn_number = int(cmd['txnNumber'])
        txn = self.txns.get(key)
        if cmd.get('startTransaction'):
            if txn is not None:
                self.rollback(txn)  # a new transaction implicitly aborts the old one
            txn = self.txns[key] = {'txnNumber': txn_number, 'snaps': {},
                                    'started': time.time()}
        if txn is None or txn['txnNumber'] != txn_number:
            raise CommandError(251, 'Transaction with txnNumber %d has been aborted or '
                                    'was never started' % txn_number,
                               errorLabels=['TransientTransactionError'])
        if db not in txn['snaps']:
            txn['snaps'][db] = snapshot_db(self.store[db])

    def rollback(self, txn):
        for db, snap in txn['snaps'].items():
            restore_db(self.store[db], snap)

    def cmd_commit_transaction(self, cmd, db, request):
        key = self.session_key(cmd)
        txn = self.txns.get(key)
        if txn is not None and txn['txnNumber'] == int(cmd.get('txnNumber', -1)):
            del self.txns[key]
        return {'ok': 1.0}

    def cmd_abort_transaction(self, cmd, db, request):
        key = self.session_key(cmd)
        txn = self.txns.get(key)
        if txn is None or txn['txnNumber'] != int(cmd.get('txnNumber', -1)):
            raise CommandError(251, 'No transaction with this txnNumber is open')
        del self.txns[key]
        self.rollback(txn)
        return {'ok': 1.0}

    def cmd_end_sessions(self, cmd, db, request):
        ids = cmd.get('endSessions') or cmd.get('killSessions') or []
        for lsid in ids if isinstance(ids, list) else []:
            key = self.session_key({'lsid': lsid})
            txn = self.txns.pop(key, None)
            if txn is not None:
                self.rollback(txn)
        return {'ok': 1.0}

    # -- server / admin commands -------------------------------------------

    def connection_id(self, request):
        sock = getattr(request, '_client', None)
        key = id(sock)
        with self.lock:
            if key not in self.conn_ids:
                self.conn_ids[key] = self.next_conn_id
                self.next_conn_id += 1
            return self.conn_ids[key]

    def cmd_hello(self, cmd, db, request):
        name = next(iter(cmd))
        doc = {
            'helloOk': True,
            'ismaster' if name != 'hello' else 'isWritablePrimary': True,
            'maxBsonObjectSize': MAX_BSON_OBJECT_SIZE,
            'maxMessageSizeBytes': MAX_MESSAGE_SIZE,
            'maxWriteBatchSize': MAX_WRITE_BATCH_SIZE,
            'localTime': now_utc(),
            'logicalSessionTimeoutMinutes': 30,
            'connectionId': self.connection_id(request),
            'minWireVersion': MIN_WIRE_VERSION,
            'maxWireVersion': MAX_WIRE_VERSION,
            'readOnly': False,
            'ok': 1.0,
        }
        return doc

    def cmd_ok(self, cmd, db, request):
        return {'ok': 1.0}

    def cmd_build_info(self, cmd, db, request):
        return {'version': SERVER_VERSION, 'gitVersion': 'mongo-standin',
                'versionArray': [7, 0, 0, 0], 'bits': 64, 'debug': False,
                'maxBsonObjectSize': MAX_BSON_OBJECT_SIZE, 'modules': [],
                'storageEngines': ['mongomock'], 'javascriptEngine': 'none', 'ok': 1.0}

    def cmd_get_parameter(self, cmd, db, request):
        doc = {'ok': 1.0}
        if 'featureCompatibilityVersion' in cmd:
            doc['featureCompatibilityVersion'] = {'version': '7.0'}
        return doc

    def cmd_server_status(self, cmd, db, request):
        return {'host': socket.gethostname(), 'version': SERVER_VERSION,
                'process': 'mongod', 'pid': Int64(os.getpid()),
                'uptime': float(time.time() - self.started),
                'localTime': now_utc(),
                'connections': {'current': len(self.conn_ids)}, 'ok': 1.0}

    def cmd_host_info(self, cmd, db, request):
        return {'system': {'hostname': socket.gethostname(), 'currentTime': now_utc()},
                'os': {'type': sys.platform}, 'ok': 1.0}

    def cmd_whatsmyuri(self, cmd, db, request):
        try:
            host, port = request._client.getpeername()[:2]
            return {'you': '%s:%d' % (host, port), 'ok': 1.0}
        except Exception:
            return {'you': 'unknown', 'ok': 1.0}

    def cmd_cmdline(self, cmd, db, request):
        return {'argv': sys.argv, 'parsed': {}, 'ok': 1.0}

    def cmd_connection_status(self, cmd, db, request):
        return {'authInfo': {'authenticatedUsers': [], 'authenticatedUserRoles': []},
                'ok': 1.0}

    def cmd_start_session(self, cmd, db, request):
        return {'id': {'id': bson.binary.Binary(os.urandom(16), 4)}, 'timeoutMinutes': 30,
                'ok': 1.0}

    def cmd_kill_cursors(self, cmd, db, request):
        killed, not_found = [], []
        for cid in cmd.get('cursors') or []:
            if self.cursors.pop(int(cid), None) is not None:
                killed.append(Int64(cid))
            else:
                not_found.append(Int64(cid))
        return {'cursorsKilled': killed, 'cursorsNotFound': not_found,
                'cursorsAlive': [], 'cursorsUnknown': [], 'ok': 1.0}

    def cmd_list_databases(self, cmd, db, request):
        names = sorted(self.store.list_created_database_names())
        flt = cmd.get('filter')
        dbs = []
        for name in names:
            entry = {'name': name} if cmd.get('nameOnly') else {
                'name': name, 'sizeOnDisk': 8192.0, 'empty': False}
            if flt and not filter_applies(flt, entry):
                continue
            dbs.append(entry)
        doc = {'databases': dbs, 'ok': 1.0}
        if not cmd.get('nameOnly'):
            doc['totalSize'] = 8192.0 * len(dbs)
            doc['totalSizeMb'] = Int64(0)
        return doc

    def cmd_drop_database(self, cmd, db, request):
        self.store._databases.pop(db, None)
        self.client._database_accesses.pop(db, None)
        self.drop_cursors(db + '.')
        return {'dropped': db, 'ok': 1.0}

    def drop_cursors(self, prefix_or_ns):
        for cid in [c for c, cur in self.cursors.items()
                    if cur['ns'] == prefix_or_ns or
                    (prefix_or_ns.endswith('.') and cur['ns'].startswith(prefix_or_ns))]:
            self.cursors.pop(cid, None)

    def cmd_db_stats(self, cmd, db, request):
        names = self.store[db].list_created_collection_names()
        objects = sum(len(self.store[db][n]) for n in names)
        return {'db': db, 'collections': len(names), 'views': 0, 'objects': objects,
                'dataSize': 0.0, 'storageSize': 0.0, 'indexes': 0, 'ok': 1.0}

    def cmd_coll_stats(self, cmd, db, request):
        name = cmd['collStats']
        if not self.coll_exists(db, name):
            raise CommandError(26, 'ns not found %s.%s' % (db, name))
        cs = self.store[db][name]
        return {'ns': '%s.%s' % (db, name), 'count': len(cs), 'size': 0,
                'nindexes': len(cs.indexes) + 1, 'ok': 1.0}

    # -- collections and indexes -------------------------------------------

    def cmd_create(self, cmd, db, request):
        name = cmd['create']
        if self.coll_exists(db, name):
            raise CommandError(48, 'Collection %s.%s already exists.' % (db, name))
        if 'viewOn' in cmd:
            raise CommandError(238, 'views are not supported by the stand-in')
        self.client[db]._ensure_valid_collection_name(name)
        self.store[db].create_collection(name)
        return {'ok': 1.0}

    def cmd_drop(self, cmd, db, request):
        name = cmd['drop']
        cs = self.coll_store(db, name)
        n_indexes = (len(cs.indexes) + 1) if cs is not None and cs.is_created else 0
        if cs is not None:
            cs.drop()
            self.store[db]._collections.pop(name, None)
        self.drop_cursors('%s.%s' % (db, name))
        return {'nIndexesWas': n_indexes, 'ns': '%s.%s' % (db, name), 'ok': 1.0}

    def cmd_rename_collection(self, cmd, db, request):
        src, dst = cmd['renameCollection'], cmd.get('to')
        if not isinstance(dst, str) or '.' not in src or '.' not in dst:
            raise CommandError(73, 'renameCollection needs full namespaces')
        sdb, sname = src.split('.', 1)
        ddb, dname = dst.split('.', 1)
        if sdb != ddb:
            raise CommandError(238, 'renaming across databases is not supported')
        if not self.coll_exists(sdb, sname):
            raise CommandError(26, 'Source collection %s does not exist' % src)
        if self.coll_exists(ddb, dname):
            if not cmd.get('dropTarget'):
                raise CommandError(48, 'target namespace exists')
            self.store[ddb]._collections.pop(dname, None)
        self.store[sdb].rename(sname, dname)
        return {'ok': 1.0}

    def collection_entries(self, db):
        out = []
        for name in sorted(self.store[db].list_created_collection_names()):
            out.append({'name': name, 'type': 'collection', 'options': {},
                        'info': {'readOnly': False},
                        'idIndex': {'v': 2, 'key': {'_id': 1}, 'name': '_id_'}})
        return out

    def cmd_list_collections(self, cmd, db, request):
        entries = self.collection_entries(db)
        flt = cmd.get('filter')
        if flt:
            entries = [e for e in entries if filter_applies(flt, e)]
        if cmd.get('nameOnly'):
            entries = [{'name': e['name'], 'type': e['type']} for e in entries]
        batch_size = (cmd.get('cursor') or {}).get('batchSize')
        return self.make_cursor('%s.$cmd.listCollections' % db, entries, batch_size)

    @staticmethod
    def index_doc(name, info):
        doc = {'v': 2, 'key': dict(info['key']), 'name': name}
        for opt in ('unique', 'sparse', 'expireAfterSeconds', 'partialFilterExpression'):
            if info.get(opt) is not None:
                doc[opt] = info[opt]
        return doc

    def cmd_list_indexes(self, cmd, db, request):
        name = cmd['listIndexes']
        if not self.coll_exists(db, name):
            raise CommandError(26, 'ns does not exist: %s.%s' % (db, name))
        cs = self.store[db][name]
        docs = [{'v': 2, 'key': {'_id': 1}, 'name': '_id_'}]
        docs += [self.index_doc(n, i) for n, i in cs.indexes.items()]
        batch_size = (cmd.get('cursor') or {}).get('batchSize')
        return self.make_cursor('%s.%s' % (db, name), docs, batch_size)

    def cmd_create_indexes(self, cmd, db, request):
        name = cmd['createIndexes']
        created_auto = not self.coll_exists(db, name)
        coll = self.coll(db, name)
        cs = self.store[db][name]
        before = len(cs.indexes) + 1
        for spec in cmd.get('indexes') or []:
            key = spec.get('key')
            if not isinstance(key, dict) or not key:
                raise CommandError(67, 'index key pattern must be a non-empty document')
            key_list = list(key.items())
            iname = spec.get('name') or mm_helpers.gen_index_name(key_list)
            if key_list == [('_id', 1)] or iname == '_id_':
                continue
            same_key = [n for n, i in cs.indexes.items() if list(i['key']) == key_list]
            kwargs = {'name': iname}
            for opt in ('unique', 'sparse'):
                if spec.get(opt):
                    kwargs[opt] = True
            for opt in ('expireAfterSeconds', 'partialFilterExpression'):
                if spec.get(opt) is not None:
                    kwargs[opt] = spec[opt]
            existing = cs.indexes.get(iname)
            if existing is not None:
                wanted = {'key': key_list}
                wanted.update({k: v for k, v in kwargs.items() if k != 'name'})
                normalized = dict(existing)
                normalized['key'] = list(existing['key'])
                if normalized != wanted:
                    raise CommandError(
                        85, 'An existing index has the same name as the requested index. '
                            'When index names are not specified, they are auto generated and '
                            'can cause conflicts. Requested index: %s, existing index: %s'
                            % (self.index_doc(iname, dict(wanted)),
                               self.index_doc(iname, existing)))
                continue
            if same_key:
                raise CommandError(
                    85, 'Index already exists with a different name: %s' % same_key[0])
            try:
                coll.create_index(key_list, **kwargs)
            except DuplicateKeyError as err:
                raise CommandError(11000, 'Index build failed: %s' % err)
        cs.create()
        return {'numIndexesBefore': before, 'numIndexesAfter': len(cs.indexes) + 1,
                'createdCollectionAutomatically': created_auto, 'ok': 1.0}

    def cmd_drop_indexes(self, cmd, db, request):
        name = cmd.get('dropIndexes', cmd.get('deleteIndexes'))
        if not self.coll_exists(db, name):
            raise CommandError(26, 'ns not found %s.%s' % (db, name))
        cs = self.store[db][name]
        before = len(cs.indexes) + 1
        index = cmd.get('index')
        if index == '*':
            names = list(cs.indexes)
        elif isinstance(index, dict):
            key_list = list(index.items())
            names = [n for n, i in cs.indexes.items() if list(i['key']) == key_list]
            if not names:
                raise CommandError(27, "can't find index with key: %s" % (index,))
        else:
            names = index if isinstance(index, list) else [index]
            for n in names:
                if n == '_id_':
                    raise CommandError(72, 'cannot drop _id index')
                if n not in cs.indexes:
                    raise CommandError(27, 'index not found with name [%s]' % n)
        for n in names:
            cs.drop_index(n)
        return {'nIndexesWas': before, 'ok': 1.0}

    # -- CRUD -----------------------------------------------------------------

    def cmd_insert(self, cmd, db, request):
        name = cmd['insert']
        coll = self.coll(db, name)
        docs = cmd.get('documents') or []
        ordered = cmd.get('ordered', True)
        n = 0
        write_errors = []
        for i, doc in enumerate(docs):
            try:
                coll.insert_one(doc)
                n += 1
            except DuplicateKeyError as err:
                e = self.dup_error_doc(err, cmd, db, doc)
                write_errors.append({'index': i, 'code': 11000, 'errmsg': e['errmsg'],
                                     'keyPattern': e['keyPattern'], 'keyValue': e['keyValue']})
            except (WriteError, OperationFailure) as err:
                write_errors.append({'index': i, 'code': err.code or 2, 'errmsg': errmsg_of(err)})
            except (ValueError, TypeError, bson.errors.InvalidDocument) as err:
                write_errors.append({'index': i, 'code': 2, 'errmsg': errmsg_of(err)})
            if write_errors and ordered:
                break
        if n:
            self.store[db][name].create()
        reply = {'n': n, 'ok': 1.0}
        if write_errors:
            reply['writeErrors'] = write_errors
        return reply

    @staticmethod
    def sort_list(sort):
        if not sort:
            return None
        out = []
        for k, v in sort.items():
            if isinstance(v, dict):
                raise NotImplementedError('$meta sort')
            out.append((k, v))
        return out

    def cmd_find(self, cmd, db, request):
        name = cmd['find']
        coll = self.coll(db, name)
        limit = int(cmd.get('limit') or 0)
        single = bool(cmd.get('singleBatch')) or limit < 0
        limit = abs(limit)
        projection = cmd.get('projection') or None
        docs = list(coll.find(cmd.get('filter') or {}, projection=projection,
                              skip=int(cmd.get('skip') or 0), limit=limit,
                              sort=self.sort_list(cmd.get('sort'))))
        batch_size = cmd.get('batchSize')
        if single and limit and not batch_size:
            batch_size = limit
        return self.make_cursor('%s.%s' % (db, name), docs, int(batch_size or 0), single)

    def cmd_get_more(self, cmd, db, request):
        cid = int(cmd['getMore'])
        cur = self.cursors.get(cid)
        if cur is None:
            raise CommandError(43, 'cursor id %d not found' % cid)
        batch = self.batch(cur['docs'], int(cmd.get('batchSize') or 0) or None)
        cur['used'] = time.time()
        if not cur['docs']:
            self.cursors.pop(cid, None)
            cid = 0
        return {'cursor': {'nextBatch': batch, 'id': Int64(cid), 'ns': cur['ns']}, 'ok': 1.0}

    def run_update(self, coll, spec):
        q = spec.get('q') or {}
        u = spec.get('u')
        if isinstance(u, list):
            raise NotImplementedError('pipeline-style updates')
        if spec.get('arrayFilters'):
            raise NotImplementedError('arrayFilters')
        if not isinstance(u, dict):
            raise CommandError(9, 'update must be a document')
        multi = bool(spec.get('multi'))
        is_replacement = bool(u) and not any(k.startswith('$') for k in u)
        if multi and is_replacement:
            raise CommandError(9, 'multi update is not supported for replacement-style update')
        return coll._update(q, u, upsert=bool(spec.get('upsert')), multi=multi)

    def cmd_update(self, cmd, db, request):
        name = cmd['update']
        coll = self.coll(db, name)
        ordered = cmd.get('ordered', True)
        n = n_modified = 0
        upserted = []
        write_errors = []
        for i, spec in enumerate(cmd.get('updates') or []):
            try:
                res = self.run_update(coll, spec)
                n += res['n']
                n_modified += res['nModified']
                if res.get('upserted') is not None:
                    upserted.append({'index': i, '_id': res['upserted']})
                    self.store[db][name].create()
            except DuplicateKeyError as err:
                e = self.dup_error_doc(err, cmd, db)
                write_errors.append({'index': i, 'code': 11000, 'errmsg': e['errmsg'],
                                     'keyPattern': e['keyPattern'], 'keyValue': e['keyValue']})
            except CommandError as err:
                write_errors.append({'index': i, 'code': err.code, 'errmsg': err.errmsg})
            except NotImplementedError as err:
                write_errors.append({'index': i, 'code': 238,
                                     'errmsg': 'not supported by the stand-in: %s' % err})
            except (WriteError, OperationFailure) as err:
                write_errors.append({'index': i, 'code': err.code or 2, 'errmsg': errmsg_of(err)})
            except (ValueError, TypeError, KeyError, bson.errors.InvalidDocument) as err:
                write_errors.append({'index': i, 'code': 2, 'errmsg': errmsg_of(err)})
            if write_errors and ordered:
                break
        reply = {'n': n, 'nModified': n_modified, 'ok': 1.0}
        if upserted:
            reply['upserted'] = upserted
        if write_errors:
            reply['writeErrors'] = write_errors
        return reply

    def cmd_delete(self, cmd, db, request):
        name = cmd['delete']
        coll = self.coll(db, name)
        ordered = cmd.get('ordered', True)
        n = 0
        write_errors = []
        for i, spec in enumerate(cmd.get('deletes') or []):
            try:
                q = spec.get('q') or {}
                if int(spec.get('limit', 0)) == 1:
                    n += coll.delete_one(q).deleted_count
                else:
                    n += coll.delete_many(q).deleted_count
            except (WriteError, OperationFailure) as err:
                write_errors.append({'index': i, 'code': err.code or 2, 'errmsg': errmsg_of(err)})
            except (ValueError, TypeError, KeyError) as err:
                write_errors.append({'index': i, 'code': 2, 'errmsg': errmsg_of(err)})
            if write_errors and ordered:
                break
        reply = {'n': n, 'ok': 1.0}
        if write_errors:
            reply['writeErrors'] = write_errors
        return reply

    def cmd_find_and_modify(self, cmd, db, request):
        name = cmd.get('findAndModify', cmd.get('findandmodify'))
        coll = self.coll(db, name)
        query = cmd.get('query') or {}
        sort = self.sort_list(cmd.get('sort'))
        projection = cmd.get('fields') or cmd.get('projection') or None
        remove = bool(cmd.get('remove'))
        update = cmd.get('update')
        new = bool(cmd.get('new'))
        upsert = bool(cmd.get('upsert'))
        if remove and (update is not None or new or upsert):
            raise CommandError(9, 'Cannot specify remove together with update, new or upsert')
        if not remove and update is None:
            raise CommandError(9, 'Either an update or remove=true must be specified')
        found = list(coll.find(query, sort=sort, limit=1))
        if found:
            target_id = found[0]['_id']
            before = coll.find_one({'_id': target_id}, projection=copy.deepcopy(projection))
            if remove:
                coll.delete_one({'_id': target_id})
                return {'lastErrorObject': {'n': 1}, 'value': before, 'ok': 1.0}
            self.run_update(coll, {'q': {'_id': target_id}, 'u': update})
            value = (coll.find_one({'_id': target_id}, projection=copy.deepcopy(projection))
                     if new else before)
            return {'lastErrorObject': {'n': 1, 'updatedExisting': True},
                    'value': value, 'ok': 1.0}
        if remove:
            return {'lastErrorObject': {'n': 0}, 'value': None, 'ok': 1.0}
        if not upsert:
            return {'lastErrorObject': {'n': 0, 'updatedExisting': False},
                    'value': None, 'ok': 1.0}
        res = self.run_update(coll, {'q': query, 'u': update, 'upsert': True})
        uid = res.get('upserted')
        self.store[db][name].create()
        value = (coll.find_one({'_id': uid}, projection=copy.deepcopy(projection))
                 if new else None)
        return {'lastErrorObject': {'n': 1, 'updatedExisting': False, 'upserted': uid},
                'value': value, 'ok': 1.0}

    def cmd_count(self, cmd, db, request):
        coll = self.coll(db, cmd['count'])
        query = cmd.get('query') or {}
        skip = int(cmd.get('skip') or 0)
        limit = abs(int(cmd.get('limit') or 0))
        n = sum(1 for _ in coll._iter_documents(query))
        n = max(0, n - skip)
        if limit:
            n = min(n, limit)
        return {'n': n, 'ok': 1.0}

    def cmd_distinct(self, cmd, db, request):
        coll = self.coll(db, cmd['distinct'])
        return {'values': coll.distinct(cmd['key'], cmd.get('query') or None), 'ok': 1.0}

    def cmd_aggregate(self, cmd, db, request):
        name = cmd['aggregate']
        if not isinstance(name, str):
            raise CommandError(238, 'database-level aggregate is not supported')
        if cmd.get('explain'):
            raise CommandError(238, 'explain is not supported')
        pipeline = cmd.get('pipeline') or []
        coll = self.coll(db, name)
        docs, rest = _aggregate_input(coll, pipeline)
        docs = list(mm_aggregate.process_pipeline(docs, coll.database, rest, None))
        if any('$out' in stage for stage in pipeline):
            target = [s['$out'] for s in pipeline if '$out' in s][-1]
            if isinstance(target, str) and self.coll_store(db, target) is not None:
                self.store[db][target].create()
            docs = []
        batch_size = (cmd.get('cursor') or {}).get('batchSize')
        return self.make_cursor('%s.%s' % (db, name), docs, batch_size)

    # -- background work --------------------------------------------------------

    def sweep(self):
        """Expire TTL documents and idle cursors."""
        with self.lock:
            changed = False
            for db_store in list(self.store._databases.values()):
                for cs in list(db_store._collections.values()):
                    if cs._ttl_indexes:
                        before = len(cs._documents)
                        cs._remove_expired_documents(force=True)
                        changed = changed or len(cs._documents) != before
            for key, txn in list(self.txns.items()):
                if time.time() - txn['started'] > TRANSACTION_LIFETIME_SECONDS:
                    log('aborting transaction open for more than %ds'
                        % TRANSACTION_LIFETIME_SECONDS)
                    self.txns.pop(key, None)
                    self.rollback(txn)
                    changed = True
            cutoff = time.time() - CURSOR_IDLE_SECONDS
            for cid in [c for c, cur in self.cursors.items() if cur['used'] < cutoff]:
                self.cursors.pop(cid, None)
            if changed:
                self.mark_dirty()

    def sweeper_loop(self):
        while not self.stopping.wait(TTL_SWEEP_SECONDS):
            try:
                self.sweep()
            except Exception:
                traceback.print_exc(file=sys.stderr)

    def saver_loop(self):
        while not self.stopping.is_set():
            if not self.dirty.wait(0.5):
                continue
            time.sleep(SAVE_DEBOUNCE_SECONDS)
            try:
                self.save()
            except Exception:
                traceback.print_exc(file=sys.stderr)

    # -- persistence --------------------------------------------------------------

    def serialize(self):
        """Return the whole state as bytes: a stream of BSON documents."""
        with self.lock:
            self.dirty.clear()
            parts = [bson.BSON.encode({'t': 'header', 'format': 'mongo-standin', 'v': 1},
                                      codec_options=CODEC)]
            for db_name, db_store in self.store._databases.items():
                for coll_name, cs in db_store._collections.items():
                    if not cs.is_created:
                        continue
                    indexes = []
                    for iname, info in cs.indexes.items():
                        entry = {k: v for k, v in info.items() if k != 'key'}
                        entry['name'] = iname
                        entry['key'] = [[k, d] for k, d in info['key']]
                        indexes.append(entry)
                    parts.append(bson.BSON.encode(
                        {'t': 'coll', 'db': db_name, 'coll': coll_name,
                         'created': bool(cs._is_force_created), 'indexes': indexes},
                        codec_options=CODEC))
                    for doc in cs._documents.values():
                        parts.append(bson.BSON.encode(
                            {'t': 'doc', 'db': db_name, 'coll': coll_name, 'd': doc},
                            codec_options=CODEC))
            return b''.join(parts)

    def save(self):
        if not self.data_file:
            return
        with self.save_lock:
            self._save_locked()

    def _save_locked(self):
        data = self.serialize()
        directory = os.path.dirname(os.path.abspath(self.data_file))
        tmp = os.path.join(directory, '.%s.%d.tmp' % (os.path.basename(self.data_file),
                                                      os.getpid()))
        # Owner-only: the snapshot holds password hashes, sealed keys and the audit log.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.data_file)

    def load(self):
        if not os.path.exists(self.data_file):
            return
        n_docs = 0
        with open(self.data_file, 'rb') as fh:
            for rec in bson.decode_file_iter(fh, CODEC):
                kind = rec.get('t')
                if kind == 'coll':
                    cs = self.store[rec['db']][rec['coll']]
                    for info in rec.get('indexes') or []:
                        iname = info.pop('name')
                        info['key'] = [(k, d) for k, d in info['key']]
                        cs.create_index(iname, info)
                    if rec.get('created'):
                        cs.create()
                elif kind == 'doc':
                    doc = rec['d']
                    self.store[rec['db']][rec['coll']][_doc_key(doc['_id'])] = doc
                    n_docs += 1
        log('loaded %d documents from %s' % (n_docs, self.data_file))


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description='MongoDB wire-protocol stand-in (mockupdb + mongomock)')
    p.add_argument('--port', type=int, required=True, help='TCP port, 0 = pick a free one')
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--data-file', default=None, help='persist state to this BSON file')
    p.add_argument('--parent-pid', type=int, default=None,
                   help='exit when this process no longer exists')
    p.add_argument('--verbose', action='store_true', help='log every command to stderr')
    return p.parse_args(argv)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # One thread per client connection, all under the GIL: with Python's default 5 ms switch interval a
    # reply ready on one connection can wait 5 ms for a thread busy on another. A mongod answers in
    # microseconds; a shorter interval keeps the stand-in's round trips closer to that.
    sys.setswitchinterval(0.0005)
    try:
        standin = StandIn(data_file=args.data_file)
    except Exception as exc:
        log('cannot load %s: %s: %s' % (args.data_file, type(exc).__name__, exc))
        return 2
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = mockupdb.MockupDB(port=args.port, request_timeout=int(1e6))
    server._address = (args.host, args.port)   # MockupDB hard-codes 'localhost'

    if args.verbose:
        def handler(request):
            log('<- %r' % (request,))
            return standin.handle_request(request)
    else:
        handler = standin.handle_request
    server.autoresponds(handler)
    port = server.run()

    threads = [threading.Thread(target=standin.sweeper_loop, name='ttl-sweeper', daemon=True)]
    if args.data_file:
        threads.append(threading.Thread(target=standin.saver_loop, name='saver', daemon=True))
    if args.parent_pid:
        def watch_parent():
            while not stop.wait(1.0):
                if not pid_alive(args.parent_pid):
                    log('parent process %d is gone, exiting' % args.parent_pid)
                    stop.set()
        threads.append(threading.Thread(target=watch_parent, name='parent-watch', daemon=True))
    for t in threads:
        t.start()

    sys.stdout.write('STANDIN READY port=%d\n' % port)
    sys.stdout.flush()

    while not stop.wait(0.5):
        pass

    standin.stopping.set()
    if args.data_file:
        try:
            standin.save()
        except Exception:
            traceback.print_exc(file=sys.stderr)
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(3.0)
    sys.stderr.flush()
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
