import Mustache

/// The console's pages as Mustache templates, compiled into the binary (no resource files to ship).
/// `{{name}}` escapes HTML, so prompts, metadata and receiver answers always render as text; the only
/// unescaped value, `{{{content}}}`, is a page these templates already rendered.
enum ConsoleTemplates {
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in all { try library.register(text, named: name) }
        return library
    }

    static let all: [(String, String)] = [("layout", layout), ("signin", signIn), ("tasks", tasks), ("task", task),
                                          ("deadletters", deadLetters), ("clients", clients), ("upstream", upstream),
                                          ("overview", overview), ("usage", usage), ("endpoints", endpoints)]

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>{{title}} · veo-relay console</title>
        <style>
        body{font:14px system-ui,sans-serif;margin:0;color:#222}nav{background:#223;padding:.6em 1em}nav a{color:#fff;margin-right:1.2em}
        nav form{display:inline;float:right}main{padding:1em}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;
        padding:.3em .5em;text-align:left;vertical-align:top}pre{background:#f5f5f5;padding:.6em;white-space:pre-wrap;word-break:break-all}
        .notice{background:#e7f5e7;padding:.5em}#endpoints td:nth-child(-n+2){overflow-wrap:anywhere}.charts svg{margin:0 1em 1em 0;border:1px solid #eee}.state-failed,.state-gone{color:#b00}.state-delivered,.state-succeeded{color:#070}
        </style></head><body>
        {{#signedIn}}<nav><a href="/console">Overview</a><a href="/console/tasks">Tasks</a><a href="/console/dead-letters">Dead letters</a>
        <a href="/console/clients">Clients</a><a href="/console/endpoints">Endpoints</a><a href="/console/usage">Usage</a><a href="/console/upstream">Upstream</a>
        <form method="post" action="/console/sign-out"><input type="hidden" name="csrf" value="{{csrf}}"><button>Sign out</button></form></nav>{{/signedIn}}
        <main><h1>{{title}}</h1>{{#notice}}<p class="notice" id="notice">{{notice}}</p>{{/notice}}{{{content}}}</main></body></html>
        """

    static let signIn = """
        <p>The operator console of this veo-relay: tasks, webhooks, clients, usage and the upstream, on every instance
        that shares its database. Sign in with the token the relay was started with (<code>VEO_RELAY_CONSOLE_TOKEN</code>).</p>
        <form method="post" action="/console/sign-in">
        <input type="hidden" name="nonce" value="{{nonce}}">
        <label>Operator token <input type="password" name="token" id="token" autocomplete="current-password" autofocus></label>
        <button id="sign-in">Sign in</button></form>
        {{#failed}}<p class="state-failed">That token is not the console token.</p>{{/failed}}
        """

    static let tasks = """
        <form method="get" action="/console/tasks">
        <label>State <select name="state"><option value="">any</option>{{#states}}<option{{#selected}} selected{{/selected}}>{{name}}</option>{{/states}}</select></label>
        <label>Client <select name="client"><option value="">all clients</option>
        {{#clients}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{name}} ({{id}})</option>{{/clients}}</select></label>
        <label>Search <input name="q" id="search" value="{{search}}" placeholder="task id, upstream id or metadata value"></label>
        <button id="filter">Filter</button></form>
        <table id="tasks"><tr><th>Task</th><th>State</th><th>Webhook</th><th>Client</th><th>Model</th><th>Prompt</th><th>Created</th></tr>
        {{#rows}}<tr><td><a href="/console/tasks/{{id}}">{{id}}</a></td><td class="state-{{state}}">{{state}}</td>
        <td class="state-{{delivery}}">{{delivery}}</td><td title="{{clientID}}">{{clientName}}</td><td>{{model}}</td><td>{{prompt}}</td><td>{{created}}</td></tr>{{/rows}}
        </table>{{^rows}}<p>No tasks.</p>{{/rows}}
        {{#older}}<p><a id="older" href="{{older}}">Older tasks →</a></p>{{/older}}
        """

    static let task = """
        <table><tr><th>State</th><td class="state-{{state}}">{{state}}</td></tr><tr><th>Client</th><td>{{clientID}}</td></tr>
        <tr><th>Upstream task</th><td>{{upstreamTaskID}}</td></tr><tr><th>Upstream status</th><td>{{upstreamStatus}} {{progress}}%</td></tr>
        <tr><th>Callback</th><td>{{callbackURL}}</td></tr><tr><th>Created</th><td>{{created}}</td></tr>
        <tr><th>Completed</th><td>{{completed}}</td></tr><tr><th>Error</th><td>{{error}}</td></tr></table>
        {{#cancellable}}<form method="post" action="/console/tasks/{{taskID}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}">
        <button id="cancel">Cancel (not submitted yet: nothing is paid)</button></form>{{/cancellable}}
        {{#videos}}<h2>Video {{index}}</h2>{{#stored}}<video class="stored-video" controls preload="metadata"
        src="/console/tasks/{{taskID}}/videos/{{index}}"></video>{{/stored}}{{#storeError}}<p>Not stored: {{storeError}}</p>{{/storeError}}{{/videos}}
        <h2>Request</h2><pre id="request">{{request}}</pre>
        {{#metadata}}<h2>Metadata</h2><pre id="metadata">{{metadata}}</pre>{{/metadata}}
        {{#upstream}}<h2>Upstream answer (last poll)</h2><pre>{{upstream}}</pre>{{/upstream}}
        {{#submissionAnswer}}<h2>Submission answer</h2><pre>{{submissionAnswer}}</pre>{{/submissionAnswer}}
        <h2>Events</h2><table id="events"><tr><th>#</th><th>Type</th><th>webhook-id</th><th>At</th></tr>
        {{#events}}<tr><td>{{sequence}}</td><td>{{type}}</td><td>{{id}}</td><td>{{at}}</td></tr>{{/events}}</table>
        <h2>Webhook deliveries</h2>
        {{#deliveries}}<h3>{{type}} · <span class="state-{{state}} delivery-state" data-event="{{eventID}}">{{state}}</span> · {{attempts}} attempt(s)</h3>
        <p>{{eventID}} → {{destination}} {{url}}{{#nextAttempt}} · next attempt {{nextAttempt}}{{/nextAttempt}}</p>
        <form method="post" action="/console/tasks/{{taskID}}/replay"><input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="event" value="{{eventID}}"><input type="hidden" name="destination" value="{{destination}}">
        <button class="replay">Replay</button></form>
        <table><tr><th>At</th><th>Status</th><th>Latency</th><th>Error</th><th>Response (excerpt)</th></tr>
        {{#attempts_}}<tr><td>{{at}}</td><td>{{status}}</td><td>{{latency}} ms</td><td>{{error}}</td><td><pre>{{excerpt}}</pre></td></tr>{{/attempts_}}
        </table>{{/deliveries}}{{^deliveries}}<p>No webhook for this task.</p>{{/deliveries}}
        """

    static let deadLetters = """
        <p>Events whose retries are used up. Replay sends the same event (same webhook-id) with fresh retries.</p>
        <table id="dead-letters"><tr><th>Event</th><th>Task</th><th>Type</th><th>Attempts</th><th>Last answer</th><th>Callback</th><th></th></tr>
        {{#rows}}<tr><td>{{eventID}}</td><td><a href="/console/tasks/{{taskID}}">{{taskID}}</a></td><td>{{type}}</td><td>{{attempts}}</td>
        <td>{{last}}</td><td>{{destination}} {{url}}</td><td><form method="post" action="/console/tasks/{{taskID}}/replay">
        <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="event" value="{{eventID}}">
        <input type="hidden" name="destination" value="{{destination}}">
        <button class="replay">Replay</button></form></td></tr>{{/rows}}</table>{{^rows}}<p>No dead letters.</p>{{/rows}}
        """

    static let clients = """
        <table id="clients"><tr><th>Client</th><th>Name</th><th>Budget</th><th>Created</th><th>Revoked</th><th>Secret rotation ends</th><th></th></tr>
        {{#rows}}<tr><td>{{id}}</td><td>{{name}}</td><td>{{budget}}</td><td>{{created}}</td><td>{{revoked}}</td><td>{{rotationEnds}}</td>
        <td><a href="/console/usage?client={{id}}">Usage</a></td></tr>{{/rows}}</table>
        <p>Budgets are set with <code>veo-relay keys budget CLIENT_ID</code>.</p>
        """

    static let endpoints = """
        <p>Where clients receive their events besides each task's callback; health over the last 24 hours, on every instance.</p>
        <table id="endpoints"><tr><th>Endpoint · client</th><th>URL</th><th>Events</th><th>State</th><th>Success (24 h)</th>
        <th>Attempts (24 h)</th><th>Last error</th><th>Rate · signatures</th><th></th></tr>
        {{#rows}}<tr id="endpoint-{{id}}"><td>{{id}}<br><small>{{clientID}}</small></td><td>{{url}}</td><td>{{events}}</td>
        <td class="state-{{stateClass}} endpoint-state">{{state}}</td><td class="success-rate">{{successRate}}</td><td>{{attempts}}</td>
        <td class="last-error">{{lastError}}</td><td>{{rate}} · {{signatures}}</td>
        <td><form method="post" action="/console/endpoints/{{id}}/test"><input type="hidden" name="csrf" value="{{csrf}}">
        <button class="test">Send test event</button></form>
        {{#enabled}}<form method="post" action="/console/endpoints/{{id}}/disable"><input type="hidden" name="csrf" value="{{csrf}}">
        <button class="disable">Disable</button></form>{{/enabled}}
        {{^enabled}}<form method="post" action="/console/endpoints/{{id}}/enable"><input type="hidden" name="csrf" value="{{csrf}}">
        <button class="enable">Enable (sends its held events)</button></form>{{/enabled}}</td></tr>{{/rows}}</table>
        {{^rows}}<p>No endpoints. Clients register them with <code>POST /v1/endpoints</code>; operators with <code>veo-relay endpoints create</code>.</p>{{/rows}}
        """

    static let usageRow = "<td>{{generations}}</td><td>{{videoSeconds}}</td><td>{{succeeded}}</td><td>{{failed}}</td><td>{{cancelled}}</td>"
    static let usageHeader = "<th>Generations</th><th>Video s</th><th>Succeeded</th><th>Failed</th><th>Cancelled</th>"

    static let usage = """
        <form method="get" action="/console/usage"><label>Client <select name="client"><option value="">all clients</option>
        {{#clients}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{id}} ({{name}})</option>{{/clients}}</select></label>
        <button>Show</button></form>
        <h2>{{client}}, last 30 days (UTC)</h2><div class="charts" id="usage-chart">{{{chart}}}</div>
        {{#hasBudget}}<h2>Budget (UTC day and month)</h2><table id="budget">{{#budget}}<tr><th>{{name}}</th><td>{{value}}</td></tr>{{/budget}}</table>{{/hasBudget}}
        <h2>By model</h2><table id="usage-models"><tr><th>Model</th>\(usageHeader)</tr>
        {{#models}}<tr><td>{{label}}</td>\(usageRow)</tr>{{/models}}{{#total}}<tr><th>{{label}}</th>\(usageRow)</tr>{{/total}}</table>
        <h2>Paid by upstream key</h2><table id="usage-keys"><tr><th>Key</th>\(usageHeader)</tr>
        {{#keys}}<tr><td>{{label}}</td>\(usageRow)</tr>{{/keys}}</table>{{^keys}}<p>No submitted task has ended in these days.</p>{{/keys}}
        <h2>By day</h2><table id="usage-days"><tr><th>Day</th>\(usageHeader)</tr>
        {{#days}}<tr><td>{{label}}</td>\(usageRow)</tr>{{/days}}</table>{{^days}}<p>No use in these days.</p>{{/days}}
        <p>Generations count against budgets; a task cancelled before submission gives its share back and counts as cancelled.</p>
        """

    static let upstream = """
        <p>The upstream keys (every instance), then this instance's view of the upstream (each keeps its own breaker and allowance).</p>
        <table id="keys"><tr><th>Key</th><th>Client</th><th>Max in flight</th><th>Rate</th><th>In flight</th><th>Standing</th></tr>
        {{#keys}}<tr id="key-{{name}}"><td>{{name}} ({{hint}})</td><td>{{owner}}</td><td>{{maxInFlight}}</td><td>{{rate}}</td><td>{{inFlight}}</td>
        <td class="{{#held}}state-failed{{/held}}">{{standing}}</td></tr>{{/keys}}</table>
        <p>Add, disable and remove keys with <code>veo-relay upstream keys</code>; a held key is tried again by one probe at a growing interval.</p>
        <table id="upstream"><tr><th>Circuit breaker</th><td>{{breaker}}</td></tr>
        <tr><th>Request allowance</th><td>{{tokens}} of {{burst}} tokens, refilling at {{rate}}/s</td></tr>
        <tr><th>Last 5 minutes</th><td>{{requests}} requests, {{failures}} failed ({{errorRate}})</td></tr>
        <tr><th>Open destination circuits</th><td>{{openDestinations}}</td></tr></table>
        <h2>Backlog (all instances)</h2><table id="backlog">{{#backlog}}<tr><th>{{name}}</th><td>{{value}}</td></tr>{{/backlog}}</table>
        """

    static let overview = """
        {{#disabledEndpoints}}<p class="state-failed" id="disabled-endpoints">{{disabledEndpoints}} endpoint(s) disabled after failing every attempt:
        see <a href="/console/endpoints">Endpoints</a>.</p>{{/disabledEndpoints}}
        {{#accountHold}}<p class="state-failed" id="account-hold">Submissions held: the upstream {{accountHold}} (see <a href="/console/upstream">Upstream</a>).</p>{{/accountHold}}
        <section id="switch"><h2>Submissions upstream</h2>
        {{#pauses}}<p class="state-failed paused">Paused for {{name}} since {{value}}</p>{{/pauses}}
        {{^pauses}}<p class="state-succeeded" id="running">Running for every client.</p>{{/pauses}}
        <form method="post" action="/console/pause"><input type="hidden" name="csrf" value="{{csrf}}">
        <label>Submissions of <select name="client" id="switch-client"><option value="">all clients</option>
        {{#clients}}<option value="{{id}}">{{name}} ({{id}})</option>{{/clients}}</select></label>
        <button id="pause">Pause</button> <button id="resume" formaction="/console/resume">Resume</button></form>
        <p>Paused, nothing new is sent upstream (on every instance within a second); intake, polls, webhooks and streams go on.</p></section>
        <section id="backlog-now"><h2>Backlog now (all instances)</h2><table id="backlog">{{#backlog}}<tr><th>{{name}}</th><td>{{value}}</td></tr>{{/backlog}}</table></section>
        {{#sections}}<h2>{{title}}</h2><div class="charts">{{#charts}}{{{svg}}}{{/charts}}</div>{{/sections}}
        """
}
