/*
 * veo-relay's protocol for one accepted task, as a Promela model checked by spin (scripts/model-check).
 *
 * Relays (N of them, each may crash once and start again as a new incarnation) claim the task under a
 * lease, mark it `submitting` before the paid request leaves, write the upstream's answer, poll it to
 * its end, and deliver the terminal event. Every database write is one atomic step that checks the
 * lease's owner, as the stores' `WHERE lease_owner = …` does, and may fail: not committed, or committed
 * with its acknowledgement lost. Leases expire at any moment (one clock: the database's). The upstream
 * may refuse before creating a job, or accept it and lose its answer. An incarnation is judged gone
 * only on evidence: it stopped, or it crashed (a later incarnation or its heartbeat's silence tells).
 * A claim too may commit with its answer lost: the claimer never learns it holds the task. So an
 * abandoned `submitting` task is claimed under a recovery lease, which names no incarnation.
 *
 * Every state change a relay makes is a TRANSITION(from, to) below; a test holds them to the table of
 * task transitions in Sources/VeoRelay/Domain/TaskStateMachine.swift.
 *
 * Mutants (spin -D…): NO_HEARTBEAT_RULE declares a `submitting` task unknown when its lease has expired,
 * whatever its owner; NO_LEASE_CHECK writes without checking the lease's owner; NO_RECOVERY_LEASE
 * claims an abandoned submission under the claimer's own lease. Each must fail.
 */

#ifndef N
#define N 2
#endif
#define INCARNATIONS (2 * N)
#define NOBODY 255
/* A recovery lease's owner: INCARNATIONS + the claimer's incarnation (`recovery:<lease>`), no incarnation's own. */
#define RECOVERY(i) (INCARNATIONS + (i))
#ifndef MAX_CLAIMS
#define MAX_CLAIMS 3
#endif

mtype = { queued, submitting, running, succeeded, failed };

mtype state = queued;
byte owner = NOBODY;         /* lease_owner: an incarnation, 2 * relay + restarts */
bool expired = false;        /* the lease's expiry has passed, on the database's clock */
byte paid = 0;               /* jobs the upstream created for this task */
byte terminalEvents = 0;     /* terminal events written, each with its own webhook-id */
byte deliveredIDs = 0;       /* distinct webhook-ids a receiver was sent the terminal event under */
bool delivered = false;      /* the terminal event's delivery is recorded */
byte deliveryOwner = NOBODY;
bool deliveryExpired = false;
bool dead[INCARNATIONS];     /* its process ended (crash or stop) */
bool gone[INCARNATIONS];     /* evidence of that is in the database: stopped, or found gone */
bool holding[INCARNATIONS];  /* ghost: holds the upstream's answer, not written yet */
bool working[INCARNATIONS];  /* ghost: knows it holds the task `submitting` and is working it */
byte ended = 0;              /* relays whose last incarnation has ended */

#ifdef NO_LEASE_CHECK
#define HOLDS(lease) true
#else
#define HOLDS(lease) (owner == (lease))
#endif
#define MINE HOLDS(me)
#ifdef NO_HEARTBEAT_RULE
#define OWNER_GONE true
#else
#define OWNER_GONE (owner != NOBODY && (owner >= INCARNATIONS || gone[owner]))
#endif
#ifdef NO_RECOVERY_LEASE
#define RECOVERING me
#else
#define RECOVERING RECOVERY(me)
#endif

/* A state change written under the lease (the write's only check, as in the stores' SQL). */
#define TRANSITION(from, to) state = to

proctype Relay(byte relay) {
    byte me = 2 * relay;
    byte claims = 0;
start:
    if
    :: claims < MAX_CLAIMS ->
        claims++;
        if
        /* The submission claim: a queued task nobody holds, or an abandoned `submitting` one. */
        :: atomic { state == queued && (owner == NOBODY || expired) -> owner = me; expired = false }; goto mark
        :: atomic { state == submitting && expired && OWNER_GONE ->
                    /* an answer a live owner holds is never declared unknown */
                    assert(owner >= INCARNATIONS || !holding[owner] || dead[owner]);
                    owner = RECOVERING; expired = false }; goto unknown
        :: atomic { state == submitting && expired && OWNER_GONE -> owner = RECOVERING; expired = false }; goto start  /* its answer lost */
        /* The poll claim. */
        :: atomic { state == running && (owner == NOBODY || expired) -> owner = me; expired = false }; goto poll
        /* The delivery claim. */
        :: atomic { terminalEvents > 0 && !delivered && (deliveryOwner == NOBODY || deliveryExpired) ->
                    deliveryOwner = me; deliveryExpired = false }; goto deliver
        :: goto start
        fi
    :: else -> goto stop
    fi;

mark:   /* marked `submitting` in its own transaction before the request leaves */
    if
    :: atomic { MINE -> TRANSITION(queued, submitting); working[me] = true }; goto send
    :: atomic { !MINE }; goto start                                 /* taken back: nothing sent */
    :: skip; goto unsent                                            /* not committed */
    :: atomic { MINE -> TRANSITION(queued, submitting); working[me] = true }; goto unsent  /* committed, its answer lost */
    :: goto crash
    fi;
unsent: /* nothing was sent: back to the queue (written again and again until written or taken) */
    if
    :: atomic { MINE -> TRANSITION(submitting, queued); owner = NOBODY; working[me] = false }; goto start
    :: atomic { !MINE -> working[me] = false }; goto start
    :: goto unsent
    :: goto crash
    fi;
send:
    if
    :: atomic { paid++; assert(paid <= 1) };      /* no task is submitted twice */
       if
       :: holding[me] = true; goto answer
       :: goto lost                                 /* accepted, and its answer lost on the way */
       :: goto crash                                /* the relay died with the request out */
       fi
    :: goto refused                                 /* refused before any job was created */
    :: goto crash
    fi;
answer: /* an answer in hand is written until written, or until its lease is really taken */
    if
    :: atomic { MINE -> TRANSITION(submitting, running); holding[me] = false; working[me] = false }; goto start
    :: atomic { !MINE -> holding[me] = false; working[me] = false }; goto start   /* kept as a late submission */
    :: goto answer                                   /* the database is away: again */
    :: goto crash
    fi;
lost:
    if
    :: atomic { MINE -> TRANSITION(submitting, failed); terminalEvents++; working[me] = false }; goto start
    :: atomic { !MINE -> working[me] = false }; goto start
    :: goto lost
    :: goto crash
    fi;
refused:
    if
    :: atomic { MINE -> TRANSITION(submitting, queued); owner = NOBODY; working[me] = false }; goto start
    :: atomic { !MINE -> working[me] = false }; goto start
    :: goto crash
    fi;
unknown: /* its owner is gone: the outcome is unknown, and the task is never sent again */
    if
    :: atomic { HOLDS(RECOVERING) -> TRANSITION(submitting, failed); terminalEvents++ }; goto start
    :: atomic { !HOLDS(RECOVERING) }; goto start
    :: goto crash
    fi;
poll:
    if
    :: atomic { MINE -> TRANSITION(running, succeeded); terminalEvents++ }; goto start
    :: atomic { MINE -> TRANSITION(running, failed); terminalEvents++ }; goto start
    :: atomic { MINE -> owner = NOBODY }; goto start       /* still running: due again later */
    :: atomic { !MINE }; goto start
    :: goto crash
    fi;
deliver: /* sent under the event's own webhook-id, however often */
    atomic { deliveredIDs = terminalEvents; assert(deliveredIDs <= 1) };   /* no event under two ids */
    if
    :: atomic { deliveryOwner == me -> delivered = true; deliveryOwner = NOBODY }; goto start
    :: goto start                                     /* not recorded: sent again later, same id */
    :: goto crash
    fi;
crash:
    atomic {
        dead[me] = true;
        if
        :: me % 2 == 0 -> me++; claims = 0      /* started again: a new incarnation */
        :: else -> ended++; goto finished
        fi
    };
    goto start;
stop:   /* a graceful stop, with nothing in hand: the incarnation is declared stopped */
    atomic { dead[me] = true; gone[me] = true; ended++ };
finished:
    skip
}

/* Leases expire on the database's clock, at any moment. */
active proctype Expiry() {
end:
    do
    :: atomic { owner != NOBODY && !expired -> expired = true }
    :: atomic { deliveryOwner != NOBODY && !deliveryExpired -> deliveryExpired = true }
    od
}

/* Evidence that a crashed incarnation is gone: a later one on its host found its process gone, or its
 * heartbeat has been silent past the bound. Never for a process that runs. */
active proctype Evidence() {
    byte i;
end:
    do
    :: atomic { i < INCARNATIONS && dead[i] && !gone[i] -> gone[i] = true; i = 0 }
    :: atomic { i < INCARNATIONS - 1 -> i++ }
    :: atomic { i > 0 -> i-- }
    od
}

/* A `submitting` task held under an incarnation's own lease is one that incarnation is working, or one
 * whose incarnation has died (and which evidence will hand to a claim): never one a live relay has
 * forgotten, which no claim could take while that relay runs. Checked in every reachable state. */
#ifndef NO_LEASE_CHECK  /* (without the lease check, a lease's owner decides nothing) */
active proctype Remembered() {
    assert(!(state == submitting && owner < INCARNATIONS && !dead[owner] && !working[owner]))
}
#endif

/* When every relay has ended: the task reached exactly one terminal event, or it is still due. */
active proctype Outcome() {
    (ended == N) ->
    assert(terminalEvents == 1 || state == queued || state == running || (state == submitting && owner != NOBODY && (owner >= INCARNATIONS || dead[owner])))
}

init {
    byte relay = 0;
    atomic {
        do
        :: relay < N -> run Relay(relay); relay++
        :: else -> break
        od
    }
}
