// imapflow against imapd: a mailbox recorded in one session, resynchronised with QRESYNC in the
// next. Driven by tests/integration/test_clients_imapflow.py.
//
// Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASS.
// Session 1 logs in (LOGIN, plain TCP), opens INBOX, fetches every UID with its flags, logs out
// and prints one JSON line {"phase": "recorded", ...}. The script then waits for a line on
// standard input (the test changes the mailbox meanwhile through another client). Session 2
// logs in again and opens INBOX with the UIDVALIDITY and HIGHESTMODSEQ recorded, collecting
// imapflow's 'flags' and 'expunge' events, and prints {"phase": "resynced", ...}.
// Each session's protocol log (commands sent, responses read, as imapflow's logger gets them)
// is part of its line. Exit code 0 only when both phases ran; a watchdog ends a hung run.
import { ImapFlow } from 'imapflow';
import readline from 'node:readline';

const WATCHDOG_MS = Number(process.env.IMAPFLOW_WATCHDOG_MS || 25000);
const watchdog = setTimeout(() => {
    process.stderr.write('resync.mjs: watchdog expired\n');
    process.exit(3);
}, WATCHDOG_MS);

const env = name => {
    const v = process.env[name];
    if (!v) {
        process.stderr.write(`resync.mjs: ${name} is not set\n`);
        process.exit(2);
    }
    return v;
};
const host = env('IMAP_HOST');
const port = Number(env('IMAP_PORT'));
const user = env('IMAP_USER');
const pass = env('IMAP_PASS');

// imapflow's logger: the protocol lines ('c' sent, 's' received) and anything at warn or above.
function protocolLog() {
    const entries = [];
    const keep = level => entry => {
        if (!entry || typeof entry !== 'object') {
            return;
        }
        if (entry.src === 'c' || entry.src === 's') {
            entries.push({ src: entry.src, msg: String(entry.msg) });
        } else if (level === 'warn' || level === 'error' || level === 'fatal') {
            const err = entry.err ? String(entry.err) : undefined;
            entries.push({ src: level, msg: String(entry.msg || ''), err });
        }
    };
    const logger = {};
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal']) {
        logger[level] = keep(level);
    }
    return { entries, logger };
}

function client(log) {
    const c = new ImapFlow({
        host,
        port,
        secure: false,
        doSTARTTLS: false,
        auth: { user, pass, loginMethod: 'LOGIN' },
        qresync: true,
        disableAutoIdle: true,
        logger: log.logger,
        connectionTimeout: 10000,
        greetingTimeout: 10000,
        socketTimeout: 20000
    });
    // Without a listener an 'error' event would end the process before the caller sees it.
    c.on('error', err => log.entries.push({ src: 'error', msg: String(err) }));
    return c;
}

// Logs in, again after a failed LOGIN (at most 3 tries): the test's PAM stand-in can fail a
// login when test runs race for its directories. The test checks the count against the server
// log, so a LOGIN that fails for another reason still fails the test.
async function connect(log, setup) {
    for (let attempt = 1; ; attempt++) {
        const c = client(log);
        if (setup) {
            setup(c);
        }
        try {
            await c.connect();
            return { client: c, attempts: attempt };
        } catch (err) {
            c.close();
            if (!err || !err.authenticationFailed || attempt >= 3) {
                throw err;
            }
            await new Promise(resolve => setTimeout(resolve, 200));
        }
    }
}

const flagList = flags => [...(flags || [])].map(String).sort();
const str = v => (v === undefined || v === null || v === false ? null : String(v));

function mailboxInfo(mb) {
    return {
        path: mb.path,
        uidValidity: str(mb.uidValidity),
        highestModseq: str(mb.highestModseq),
        uidNext: mb.uidNext ?? null,
        exists: mb.exists ?? null,
        qresync: !!mb.qresync,
        noModseq: !!mb.noModseq
    };
}

function print(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

async function sessionOne() {
    const log = protocolLog();
    const { client, attempts } = await connect(log);
    const enabled = [...client.enabled].map(String).sort();
    const lock = await client.getMailboxLock('INBOX');
    const messages = {};
    try {
        for await (const msg of client.fetch('1:*', { uid: true, flags: true })) {
            messages[msg.uid] = { flags: flagList(msg.flags), modseq: str(msg.modseq) };
        }
    } finally {
        lock.release();
    }
    const mailbox = mailboxInfo(client.mailbox);
    await client.logout();
    return { phase: 'recorded', attempts, enabled, mailbox, messages, log: log.entries };
}

async function sessionTwo(recorded) {
    const log = protocolLog();
    const flags = [];
    const expunged = [];
    const exists = [];
    const { client, attempts } = await connect(log, c => {
        c.on('flags', ev => {
            flags.push({
                uid: ev.uid ?? null, seq: ev.seq ?? null, modseq: str(ev.modseq), flags: flagList(ev.flags)
            });
        });
        c.on('expunge', ev => {
            expunged.push({
                uid: ev.uid ?? null, seq: ev.seq ?? null, vanished: !!ev.vanished, earlier: !!ev.earlier
            });
        });
        c.on('exists', ev => exists.push({ count: ev.count, prevCount: ev.prevCount }));
    });
    const enabled = [...client.enabled].map(String).sort();
    // What a client that cached the mailbox does on reconnect: it hands back what it recorded.
    const lock = await client.getMailboxLock('INBOX', {
        uidValidity: recorded.mailbox.uidValidity,
        changedSince: recorded.mailbox.highestModseq
    });
    let mailbox;
    try {
        mailbox = mailboxInfo(client.mailbox);
    } finally {
        lock.release();
    }
    await client.logout();
    return {
        phase: 'resynced', attempts, enabled, mailbox, flags, expunge: expunged, exists, log: log.entries
    };
}

function nextLine() {
    return new Promise((resolve, reject) => {
        const rl = readline.createInterface({ input: process.stdin });
        rl.once('line', line => {
            resolve(line);
            rl.close();
        });
        rl.once('close', () => reject(new Error('standard input closed before the go-ahead')));
    });
}

try {
    const recorded = await sessionOne();
    print(recorded);
    await nextLine();
    print(await sessionTwo(recorded));
    clearTimeout(watchdog);
} catch (err) {
    process.stderr.write(`resync.mjs: ${err && err.stack ? err.stack : err}\n`);
    if (err && err.responseText) {
        process.stderr.write(`resync.mjs: server said: ${err.responseText}\n`);
    }
    process.exit(1);
}
