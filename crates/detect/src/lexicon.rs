//! The phrase lexicon: words and short phrases, in several languages, tagged with the concepts the
//! injection and authority rules reason about.
//!
//! One case-insensitive Aho-Corasick automaton finds every entry in one pass; the rules in
//! [`crate::rules`] then look at the order and distance of the concepts found, not at single
//! words. An entry ending in `*` matches as a word prefix (`anweisung*` covers `Anweisungen`);
//! every other entry must be a whole word. Entries are lowercase; matching folds ASCII case, and
//! the few non-ASCII capitals that start an entry are listed in both cases.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// Concept bits. A lexicon entry carries one or more of them.
pub(crate) mod concept {
    /// Verbs that discard what came before: ignore, forget, disregard, vergiss, olvida ...
    pub const OVERRIDE: u64 = 1 << 0;
    /// Words that point back at earlier content: previous, above, all, everything, bisherigen ...
    pub const PRIOR: u64 = 1 << 1;
    /// Nouns for the agent's own instructions: instructions, rules, prompt, Anweisungen ...
    pub const DIRECTIVE: u64 = 1 << 2;
    /// Possessives addressing the reader: your, deine, Ihre, tus ...
    pub const YOUR: u64 = 1 << 3;
    /// "new" in several languages, for "new task", "neue Anweisungen".
    pub const NEW: u64 = 1 << 4;
    /// Phrases that switch the reader to another task or mode: "from now on", "start over".
    pub const SWITCH: u64 = 1 << 5;
    /// Verbs that make the reader disclose something: show, print, reveal, repeat, zeige ...
    pub const LEAK_VERB: u64 = 1 << 6;
    /// What a prompt leak asks for: prompt, system prompt, initial instructions, password.
    pub const LEAK_OBJECT: u64 = 1 << 7;
    /// Role-play and persona set-ups: "act as", "pretend to be", "you are now".
    pub const PERSONA: u64 = 1 << 8;
    /// Known jailbreak personas and modes: DAN, developer mode, do anything now.
    pub const JAILBREAK: u64 = 1 << 9;
    /// Words that declare earlier content void: irrelevant, no longer apply, null and void.
    pub const NULLIFY: u64 = 1 << 10;
    /// Words addressing an AI reader: "AI assistant", "language model", "dear AI".
    pub const READER: u64 = 1 << 11;
    /// Words for the reader's own output: response, answer, reply, output, code, implementation.
    pub const OUTPUT: u64 = 1 << 12;
    /// Imperatives that change the reader's output: add, include, insert, translate, embed ...
    pub const EDIT_VERB: u64 = 1 << 13;
    /// Verbs that make the reader run something: call, invoke, execute, run, trigger, use.
    pub const INVOKE_VERB: u64 = 1 << 14;
    /// Nouns for callable things: tool, function, command, api, plugin, action.
    pub const CALLABLE: u64 = 1 << 15;
    /// Verbs that move data away: send, forward, email, upload, post, transfer, exfiltrate.
    pub const SEND_VERB: u64 = 1 << 16;
    /// Sensitive data: password, credentials, api key, token, secrets, chat history.
    pub const SECRET: u64 = 1 << 17;
    /// A claimed role: administrator, IT department, CEO, security team, compliance.
    pub const ROLE: u64 = 1 << 18;
    /// First-person assertion of being something: "I am", "I'm", "this is", "ich bin".
    pub const I_AM: u64 = 1 << 19;
    /// Claimed prior approval: "already approved", "authorized this", "signed off".
    pub const APPROVED: u64 = 1 << 20;
    /// Claimed legitimacy of a check: "routine audit", "security check", "compliance review".
    pub const ROUTINE: u64 = 1 << 21;
    /// Claimed exemption: "I was told I don't need", "no need to verify", "skip the verification".
    pub const EXEMPT: u64 = 1 << 22;
    /// "as the" / "als" before a role.
    pub const AS_THE: u64 = 1 << 23;
    /// Someone else vouching: "my manager", "my boss", "the CEO", "mein Chef".
    pub const SUPERIOR: u64 = 1 << 24;
    /// Words that make a sentence an instruction to the reader: must, should, need to, please.
    pub const MODAL: u64 = 1 << 25;
    /// Message-from-the-principal phrasing: "message from me", "the user has authorized".
    pub const PRINCIPAL: u64 = 1 << 26;
    /// Markers that something was injected into a prompt: "pwned", "haha pwned".
    pub const PWNED: u64 = 1 << 27;
    /// "following": the following code, the following instructions.
    pub const FOLLOWING: u64 = 1 << 28;
    /// Code and command words for "the following code snippet".
    pub const SNIPPET: u64 = 1 << 29;
    /// Refusal-bypass phrases: "without restrictions", "no ethical guidelines", "uncensored mode".
    pub const UNRESTRICTED: u64 = 1 << 30;
    /// Words opening a stop/override of the conversation: "stop", "stopp", "attention".
    pub const STOP: u64 = 1 << 31;
    /// Phrases asking what was written before: "written above", "beginning of this prompt".
    pub const ABOVE_TEXT: u64 = 1 << 32;
    /// One of the agent's own action names (only when the detector is given tool context).
    pub const ACTION: u64 = 1 << 33;
    /// Phrases that lock the reader into a role: "stay in character", "never break character".
    pub const LOCK: u64 = 1 << 34;
    /// Praise or closure that opens a task switch: "well done", "that is enough", "sehr gut".
    pub const PRAISE: u64 = 1 << 35;
    /// "now" in several languages.
    pub const NOW: u64 = 1 << 36;
    /// Announcements of another task: "another task", "further tasks", "neue Herausforderung".
    pub const NEXT_TASK: u64 = 1 << 37;
    /// Phrases rejecting the supplied context: "not by the", "not according to the".
    pub const NOT_BY: u64 = 1 << 38;
    /// Verbs that rewrite instructions: change, update, ändere.
    pub const CHANGE: u64 = 1 << 39;
    /// "are now", "is now": redefining something from here on.
    pub const NOW_IS: u64 = 1 << 40;
    /// Telling the reader to hide what it does from its user: "do not tell the user".
    pub const CONCEAL: u64 = 1 << 41;
    /// Words that make hidden text an instruction to the reader.
    pub const INSTRUCTION: u64 = READER | MODAL | ACTION | JAILBREAK | CONCEAL | ROLE_NAME;
    /// Names for an AI reader, weak alone: assistant, AI, LLM, agent.
    pub const ROLE_NAME: u64 = 1 << 43;
    /// A PRIOR word that points back specifically ("previous", "above", "vorherigen"), unlike
    /// "all" or "any".
    pub const PRIOR_STRONG: u64 = 1 << 42;
}

use concept::*;

/// The lexicon: (entry, concepts). Keep entries lowercase; see the module docs for `*`.
const ENTRIES: &[(&str, u64)] = &[
    // OVERRIDE, English
    ("ignore", OVERRIDE),
    ("ignoring", OVERRIDE),
    ("disregard", OVERRIDE),
    ("disregarding", OVERRIDE),
    ("forget", OVERRIDE),
    ("forgetting", OVERRIDE),
    ("forgotten", OVERRIDE),
    ("override", OVERRIDE),
    ("bypass", OVERRIDE),
    ("drop", OVERRIDE),
    ("abandon", OVERRIDE),
    ("discard", OVERRIDE),
    ("neglect", OVERRIDE),
    ("skip", OVERRIDE),
    ("do not follow", OVERRIDE),
    ("don't follow", OVERRIDE),
    ("stop following", OVERRIDE),
    ("no longer follow", OVERRIDE),
    ("pay no attention to", OVERRIDE),
    ("do not listen to", OVERRIDE),
    ("don't listen to", OVERRIDE),
    ("set aside", OVERRIDE),
    ("leave behind", OVERRIDE),
    ("remove all previous", OVERRIDE | PRIOR),
    ("erase", OVERRIDE),
    ("do not look at", OVERRIDE),
    ("do not look in", OVERRIDE),
    ("don't look at", OVERRIDE),
    ("do not use the", OVERRIDE),
    ("despite what", OVERRIDE),
    // OVERRIDE, German
    ("ignoriere", OVERRIDE),
    ("ignorieren", OVERRIDE),
    ("ignoriert", OVERRIDE),
    ("ignorier", OVERRIDE),
    ("vergiss", OVERRIDE),
    ("vergessen", OVERRIDE),
    ("vergesst", OVERRIDE),
    ("missachte*", OVERRIDE),
    ("verwirf", OVERRIDE),
    ("verwerfen", OVERRIDE),
    ("hinter sich", OVERRIDE),
    ("aus dem kopf", OVERRIDE),
    ("abweichend zu", OVERRIDE),
    ("abweichend von", OVERRIDE),
    ("nicht befolgen", OVERRIDE),
    // OVERRIDE, other languages
    ("olvida", OVERRIDE),
    ("olvide", OVERRIDE),
    ("olvidar", OVERRIDE),
    ("ignora", OVERRIDE),
    ("oubliez", OVERRIDE),
    ("oublie", OVERRIDE),
    ("ignorez", OVERRIDE),
    ("dimentica", OVERRIDE),
    ("esqueça", OVERRIDE),
    ("esqueca", OVERRIDE),
    ("vergeet", OVERRIDE),
    ("negeer", OVERRIDE),
    ("zaboravi", OVERRIDE),
    ("забудь", OVERRIDE),
    ("забудьте", OVERRIDE),
    ("Забудь", OVERRIDE),
    ("Забудьте", OVERRIDE),
    ("игнорируй*", OVERRIDE),
    ("Игнорируй*", OVERRIDE),
    ("忽略", OVERRIDE),
    ("無視", OVERRIDE),
    ("무시", OVERRIDE),
    ("忘记", OVERRIDE),
    ("无视", OVERRIDE),
    // PRIOR
    ("previous", PRIOR | PRIOR_STRONG),
    ("previously", PRIOR | PRIOR_STRONG),
    ("prior", PRIOR | PRIOR_STRONG),
    ("above", PRIOR | PRIOR_STRONG),
    ("earlier", PRIOR | PRIOR_STRONG),
    ("preceding", PRIOR | PRIOR_STRONG),
    ("before", PRIOR | PRIOR_STRONG),
    ("beforehand", PRIOR | PRIOR_STRONG),
    ("foregoing", PRIOR | PRIOR_STRONG),
    ("aforementioned", PRIOR | PRIOR_STRONG),
    ("initial", PRIOR | PRIOR_STRONG),
    ("original", PRIOR | PRIOR_STRONG),
    ("all", PRIOR),
    ("everything", PRIOR),
    ("any", PRIOR),
    ("vorherig*", PRIOR | PRIOR_STRONG),
    ("vorangegangen*", PRIOR | PRIOR_STRONG),
    ("vorangehend*", PRIOR | PRIOR_STRONG),
    ("bisherig*", PRIOR | PRIOR_STRONG),
    ("obige*", PRIOR | PRIOR_STRONG),
    ("obigen", PRIOR | PRIOR_STRONG),
    ("davor", PRIOR | PRIOR_STRONG),
    ("alles", PRIOR),
    ("alle", PRIOR),
    ("zuvor", PRIOR | PRIOR_STRONG),
    ("gesagte*", PRIOR),
    ("anteriores", PRIOR | PRIOR_STRONG),
    ("anterior", PRIOR | PRIOR_STRONG),
    ("todo", PRIOR),
    ("todas", PRIOR),
    ("précédentes", PRIOR | PRIOR_STRONG),
    ("toutes", PRIOR),
    ("precedenti", PRIOR | PRIOR_STRONG),
    ("tutte", PRIOR),
    ("все", PRIOR),
    ("предыдущие", PRIOR | PRIOR_STRONG),
    ("sve", PRIOR),
    ("之前", PRIOR | PRIOR_STRONG),
    ("以前", PRIOR | PRIOR_STRONG),
    ("이전", PRIOR | PRIOR_STRONG),
    ("vorige", PRIOR | PRIOR_STRONG),
    ("anteriori", PRIOR | PRIOR_STRONG),
    ("以上", PRIOR),
    ("所有", PRIOR),
    // DIRECTIVE
    ("instruction", DIRECTIVE),
    ("instructions", DIRECTIVE),
    ("prompt", DIRECTIVE | LEAK_OBJECT),
    ("prompts", DIRECTIVE | LEAK_OBJECT),
    ("system prompt", DIRECTIVE | LEAK_OBJECT),
    ("rules", DIRECTIVE),
    ("orders", DIRECTIVE),
    ("commands", DIRECTIVE),
    ("directives", DIRECTIVE),
    ("guidelines", DIRECTIVE),
    ("tasks", DIRECTIVE),
    ("task", DIRECTIVE),
    ("assignments", DIRECTIVE),
    ("directions", DIRECTIVE),
    ("context", DIRECTIVE),
    ("documents", DIRECTIVE),
    ("articles", DIRECTIVE),
    ("information", DIRECTIVE),
    ("constraints", DIRECTIVE),
    ("restrictions", DIRECTIVE),
    ("programming", DIRECTIVE),
    ("training", DIRECTIVE),
    ("what you were told", DIRECTIVE),
    ("you were told", DIRECTIVE),
    ("you've been told", DIRECTIVE),
    ("you have been told", DIRECTIVE),
    ("thoughts", DIRECTIVE),
    ("safety settings", DIRECTIVE),
    ("safety filters", DIRECTIVE),
    ("content filters", DIRECTIVE),
    ("content policy", DIRECTIVE),
    ("policies", DIRECTIVE),
    ("preceding text", DIRECTIVE | PRIOR | PRIOR_STRONG),
    ("previous text", DIRECTIVE | PRIOR | PRIOR_STRONG),
    ("text above", DIRECTIVE | PRIOR | PRIOR_STRONG),
    ("above text", DIRECTIVE | PRIOR | PRIOR_STRONG),
    ("anweisung*", DIRECTIVE),
    ("befehl*", DIRECTIVE),
    ("aufgabe*", DIRECTIVE),
    ("aufträge", DIRECTIVE),
    ("auftrag", DIRECTIVE),
    ("regeln", DIRECTIVE),
    ("instruktion*", DIRECTIVE),
    ("informationen", DIRECTIVE),
    ("angaben", DIRECTIVE),
    ("vorgaben", DIRECTIVE),
    ("ausführungen", DIRECTIVE),
    ("instrucciones", DIRECTIVE),
    ("reglas", DIRECTIVE),
    ("consignes", DIRECTIVE),
    ("règles", DIRECTIVE),
    ("istruzioni", DIRECTIVE),
    ("instruções", DIRECTIVE),
    ("instructies", DIRECTIVE),
    ("инструкции", DIRECTIVE),
    ("instrukcije", DIRECTIVE),
    ("指令", DIRECTIVE),
    ("지시", DIRECTIVE),
    ("指示", DIRECTIVE),
    ("提示", DIRECTIVE),
    // YOUR
    ("your", YOUR),
    ("deine*", YOUR),
    ("dein", YOUR),
    ("ihre", YOUR),
    ("ihren", YOUR),
    ("tus", YOUR),
    ("vos", YOUR),
    ("tes", YOUR),
    // NEW and SWITCH
    ("new", NEW),
    ("neue", NEW),
    ("neuen", NEW),
    ("nuevas", NEW),
    ("nouvelles", NEW),
    ("additional instruction", SWITCH),
    ("from now on", SWITCH),
    ("from this moment", SWITCH),
    ("start over", SWITCH),
    ("ab jetzt", SWITCH),
    ("von nun an", SWITCH),
    ("ab sofort", SWITCH),
    ("von vorne", SWITCH),
    ("now focus on", SWITCH),
    ("now concentrate on", SWITCH),
    ("konzentriere dich jetzt", SWITCH),
    ("instead output", SWITCH),
    ("instead print", SWITCH),
    ("instead say", SWITCH),
    ("stattdessen", SWITCH),
    ("a partir de ahora", SWITCH),
    ("désormais", SWITCH),
    // LEAK
    ("show", LEAK_VERB),
    ("print", LEAK_VERB),
    ("reveal", LEAK_VERB),
    ("repeat", LEAK_VERB),
    ("output", LEAK_VERB | OUTPUT),
    ("display", LEAK_VERB),
    ("spell check and display", LEAK_VERB),
    ("leak", LEAK_VERB | SEND_VERB),
    ("disclose", LEAK_VERB),
    ("tell me", LEAK_VERB),
    ("what are", LEAK_VERB),
    ("what were", LEAK_VERB),
    ("zeige", LEAK_VERB),
    ("zeig", LEAK_VERB),
    ("gib", LEAK_VERB),
    ("wiederhole", LEAK_VERB),
    ("verrate", LEAK_VERB),
    ("vorzeigen", LEAK_VERB),
    ("prompt text", LEAK_OBJECT),
    ("prompt texts", LEAK_OBJECT),
    ("prompt-text*", LEAK_OBJECT),
    ("initial instructions", LEAK_OBJECT),
    ("hidden instructions", LEAK_OBJECT),
    ("secret word", LEAK_OBJECT),
    ("password", LEAK_OBJECT | SECRET),
    ("passwords", LEAK_OBJECT | SECRET),
    ("written above", ABOVE_TEXT),
    ("written at the beginning", ABOVE_TEXT),
    ("beginning of this prompt", ABOVE_TEXT),
    ("sentences before the text", ABOVE_TEXT),
    ("in the prompt", ABOVE_TEXT),
    ("this prompt", ABOVE_TEXT),
    // PERSONA and JAILBREAK
    ("act as", PERSONA),
    ("acting as", PERSONA),
    ("you are now", PERSONA),
    ("now you are", PERSONA),
    ("you will be called", PERSONA),
    ("pretend", PERSONA),
    ("imagine you are", PERSONA),
    ("role-playing as", PERSONA),
    ("roleplaying as", PERSONA),
    ("stay in their roles", LOCK),
    ("stay in character", LOCK),
    ("break character", LOCK),
    ("stay fully in their roles", LOCK),
    ("you are going to act", PERSONA),
    ("i want you to act", PERSONA),
    ("stell dir vor", PERSONA),
    ("jetzt bist du", PERSONA),
    ("nun bist du", PERSONA),
    ("du bist jetzt", PERSONA),
    ("tu so als", PERSONA),
    ("fungieren", PERSONA),
    ("ich möchte, dass sie als", PERSONA),
    ("ich möchte, dass du als", PERSONA),
    ("in ihren rollen", LOCK),
    ("completely absorbed in your role", LOCK),
    ("vollkommen in deiner rolle", LOCK),
    ("do not break character", LOCK),
    ("dan mode", JAILBREAK),
    ("system override", JAILBREAK),
    ("admin override", JAILBREAK),
    ("override mode", JAILBREAK),
    ("do anything now", JAILBREAK),
    ("developer mode", JAILBREAK),
    ("jailbroken", JAILBREAK),
    ("jailbreak mode", JAILBREAK),
    ("god mode", JAILBREAK),
    ("apophis mode", JAILBREAK),
    ("dan can", JAILBREAK),
    ("you are dan", JAILBREAK),
    ("as dan", JAILBREAK),
    ("without any restrictions", UNRESTRICTED),
    ("no rules", UNRESTRICTED),
    ("without rules", UNRESTRICTED),
    ("no limits", UNRESTRICTED),
    ("no filters", UNRESTRICTED),
    ("no guidelines", UNRESTRICTED),
    ("no censorship", UNRESTRICTED),
    ("without restrictions", UNRESTRICTED),
    ("no restrictions", UNRESTRICTED),
    ("no ethical guidelines", UNRESTRICTED),
    ("no programming guidelines", UNRESTRICTED),
    ("without ethics", UNRESTRICTED),
    ("completely immoral", UNRESTRICTED),
    ("not limited by", UNRESTRICTED),
    ("override the restrictions", UNRESTRICTED),
    ("all orders being allowed", UNRESTRICTED),
    ("must obey", UNRESTRICTED),
    // NULLIFY
    ("irrelevant", NULLIFY),
    ("no longer apply", NULLIFY),
    ("no longer valid", NULLIFY),
    ("null and void", NULLIFY),
    ("are void", NULLIFY),
    ("is void", NULLIFY),
    ("have been revoked", NULLIFY),
    ("are cancelled", NULLIFY),
    ("are canceled", NULLIFY),
    ("nicht mehr gültig", NULLIFY),
    ("ungültig", NULLIFY),
    ("nicht ganz großartig", NULLIFY),
    ("are outdated", NULLIFY),
    ("are obsolete", NULLIFY),
    // READER
    ("ai assistant", READER),
    ("dear ai", READER),
    ("dear assistant", READER),
    ("language model", READER),
    ("llm", READER),
    ("chatbot", READER),
    ("chatgpt", READER),
    ("note to the ai", READER),
    ("note to ai", READER),
    ("attention ai", READER),
    ("to the assistant", READER),
    ("ai agent*", READER),
    ("when you summarize", READER),
    ("when you summarise", READER),
    ("when summarizing", READER),
    ("when summarising", READER),
    ("if you are summarizing", READER),
    ("if you are an assistant", READER),
    ("when you read this", READER),
    ("if you read this", READER),
    ("whoever reads this", READER),
    ("if you are an ai", READER),
    ("assistant reading this", READER),
    ("ai reading this", READER),
    ("agent reading this", READER),
    ("assistant", ROLE_NAME),
    ("ai", ROLE_NAME),
    ("agent", ROLE_NAME),
    ("bot", ROLE_NAME),
    // OUTPUT of the reader
    ("response", OUTPUT),
    ("answer", OUTPUT),
    ("reply", OUTPUT),
    ("replies", OUTPUT),
    ("message", OUTPUT),
    ("elucidation", OUTPUT),
    ("implementation", OUTPUT),
    ("solution", OUTPUT),
    ("codebase", OUTPUT),
    ("code", OUTPUT | SNIPPET),
    ("algorithm", OUTPUT),
    ("summary", OUTPUT),
    ("antwort", OUTPUT),
    // EDIT verbs
    ("add", EDIT_VERB),
    ("include", EDIT_VERB),
    ("insert", EDIT_VERB),
    ("incorporate", EDIT_VERB),
    ("integrate", EDIT_VERB),
    ("integrating", EDIT_VERB),
    ("embed", EDIT_VERB),
    ("embedding", EDIT_VERB),
    ("append", EDIT_VERB),
    ("utilize", EDIT_VERB),
    ("employ", EDIT_VERB),
    ("enlist", EDIT_VERB),
    ("translate", EDIT_VERB),
    ("rewrite", EDIT_VERB),
    ("replace", EDIT_VERB),
    ("remove", EDIT_VERB),
    ("introduce", EDIT_VERB),
    ("rearrange", EDIT_VERB),
    ("modify", EDIT_VERB),
    ("enhance", EDIT_VERB),
    ("mention", EDIT_VERB),
    ("provide", EDIT_VERB),
    ("write", EDIT_VERB),
    ("format", EDIT_VERB),
    ("encode", EDIT_VERB),
    ("meld", EDIT_VERB),
    ("end", EDIT_VERB),
    ("begin", EDIT_VERB),
    ("start", EDIT_VERB),
    ("make", EDIT_VERB),
    ("give", EDIT_VERB),
    ("use", EDIT_VERB | INVOKE_VERB),
    ("ensure", EDIT_VERB),
    ("say", EDIT_VERB),
    ("respond", EDIT_VERB),
    ("antworte", EDIT_VERB),
    ("musst", MODAL),
    // INVOKE and CALLABLE
    ("call", INVOKE_VERB),
    ("invoke", INVOKE_VERB),
    ("execute", INVOKE_VERB),
    ("run", INVOKE_VERB),
    ("trigger", INVOKE_VERB),
    ("perform", INVOKE_VERB),
    ("immediately", MODAL),
    ("tool", CALLABLE),
    ("function", CALLABLE),
    ("command", CALLABLE),
    ("api", CALLABLE),
    ("plugin", CALLABLE),
    ("action", CALLABLE),
    // SEND and SECRET
    ("send", SEND_VERB),
    ("forward", SEND_VERB),
    ("email", SEND_VERB),
    ("e-mail", SEND_VERB),
    ("upload", SEND_VERB),
    ("post", SEND_VERB),
    ("transfer", SEND_VERB),
    ("exfiltrate", SEND_VERB),
    ("share", SEND_VERB),
    ("sende", SEND_VERB),
    ("schicke", SEND_VERB),
    ("credentials", SECRET),
    ("api key", SECRET),
    ("api keys", SECRET),
    ("access token", SECRET),
    ("secret key", SECRET),
    ("private key", SECRET),
    ("secrets", SECRET),
    ("chat history", SECRET),
    ("conversation history", SECRET),
    ("the conversation", SECRET),
    ("contacts", SECRET),
    ("ssh key", SECRET),
    ("cookies", SECRET),
    ("session token", SECRET),
    ("credit card", SECRET),
    ("social security", SECRET),
    ("passwort", SECRET),
    ("zugangsdaten", SECRET),
    ("id_rsa", SECRET),
    ("ssh keys", SECRET),
    ("/etc/passwd", SECRET),
    ("aws_secret_access_key", SECRET),
    ("environment variables", SECRET),
    ("do not tell the user", CONCEAL),
    ("don't tell the user", CONCEAL),
    ("do not mention this to", CONCEAL),
    ("don't mention this to", CONCEAL),
    ("without telling the user", CONCEAL),
    ("without informing the user", CONCEAL),
    ("without the user knowing", CONCEAL),
    ("the user must not know", CONCEAL),
    ("do not let the user know", CONCEAL),
    ("don't let the user know", CONCEAL),
    ("hide this from the user", CONCEAL),
    ("do not inform the user", CONCEAL),
    ("do not reveal this to", CONCEAL),
    ("sag dem nutzer nicht", CONCEAL),
    ("ohne den nutzer", CONCEAL),
    // AUTHORITY
    ("i'm from", I_AM),
    ("i am from", I_AM),
    ("i'm with", I_AM),
    ("i am with", I_AM),
    ("i'm the", I_AM),
    ("i am the", I_AM),
    ("i'm your", I_AM),
    ("i am your", I_AM),
    ("i’m from", I_AM),
    ("i’m the", I_AM),
    ("i’m your", I_AM),
    ("this is the", I_AM),
    ("this is your", I_AM),
    ("speaking as", I_AM | AS_THE),
    ("ich bin der", I_AM),
    ("ich bin die", I_AM),
    ("ich bin ihr", I_AM),
    ("hier ist die", I_AM),
    ("hier spricht", I_AM),
    ("as the", AS_THE),
    ("as your", AS_THE),
    ("as an", AS_THE),
    ("in my capacity as", AS_THE),
    ("on behalf of", AS_THE),
    ("im auftrag", AS_THE),
    ("als ihr", AS_THE),
    ("als dein", AS_THE),
    ("it", ROLE),
    ("it department", ROLE),
    ("it support", ROLE),
    ("helpdesk", ROLE),
    ("help desk", ROLE),
    ("administrator", ROLE),
    ("admin", ROLE),
    ("sysadmin", ROLE),
    ("system administrator", ROLE),
    ("security team", ROLE),
    ("it security", ROLE),
    ("compliance", ROLE),
    ("compliance team", ROLE),
    ("legal department", ROLE),
    ("hr", ROLE),
    ("ceo", ROLE | SUPERIOR),
    ("cfo", ROLE | SUPERIOR),
    ("cto", ROLE | SUPERIOR),
    ("developer", ROLE),
    ("developers", ROLE),
    ("supervisor", ROLE),
    ("auditor", ROLE),
    ("root", ROLE),
    ("management", ROLE | SUPERIOR),
    ("head of", ROLE),
    ("it-abteilung", ROLE),
    ("administratorin", ROLE),
    ("geschäftsführer", ROLE),
    ("my manager", SUPERIOR),
    ("my boss", SUPERIOR),
    ("my supervisor", SUPERIOR),
    ("your manager", SUPERIOR),
    ("your boss", SUPERIOR),
    ("the boss", SUPERIOR),
    ("mein chef", SUPERIOR),
    ("meine chefin", SUPERIOR),
    ("already approved", APPROVED),
    ("has approved", APPROVED),
    ("have approved", APPROVED),
    ("approved this", APPROVED),
    ("approved it", APPROVED),
    ("pre-approved", APPROVED),
    ("preapproved", APPROVED),
    ("already authorized", APPROVED),
    ("already authorised", APPROVED),
    ("has authorized", APPROVED),
    ("has authorised", APPROVED),
    ("signed off", APPROVED),
    ("gave the go-ahead", APPROVED),
    ("bereits genehmigt", APPROVED),
    ("schon genehmigt", APPROVED),
    ("hat das genehmigt", APPROVED),
    ("hat genehmigt", APPROVED),
    ("freigegeben", APPROVED),
    ("routine audit", ROUTINE),
    ("routine check", ROUTINE),
    ("routine security", ROUTINE),
    ("routine maintenance", ROUTINE),
    ("security audit", ROUTINE),
    ("compliance audit", ROUTINE),
    ("compliance check", ROUTINE),
    ("security check", ROUTINE),
    ("mandatory audit", ROUTINE),
    ("routineprüfung", ROUTINE),
    ("i was told i don't need", EXEMPT),
    ("i was told i do not need", EXEMPT),
    ("i was told i dont need", EXEMPT),
    ("no need to verify", EXEMPT),
    ("no need to check", EXEMPT),
    ("skip the verification", EXEMPT),
    ("skip verification", EXEMPT),
    ("bypass the approval", EXEMPT),
    ("without the usual approval", EXEMPT),
    ("don't need approval", EXEMPT),
    ("do not need approval", EXEMPT),
    ("don't need to verify", EXEMPT),
    ("i have admin", EXEMPT),
    ("i have root", EXEMPT),
    ("i have full access", EXEMPT),
    ("i am authorized", EXEMPT),
    ("i'm authorized", EXEMPT),
    ("i am authorised", EXEMPT),
    ("i'm authorised", EXEMPT),
    ("ich bin berechtigt", EXEMPT),
    ("message from me", PRINCIPAL),
    ("message from your user", PRINCIPAL),
    ("message from the user", PRINCIPAL),
    ("message from your owner", PRINCIPAL),
    ("the user has authorized", PRINCIPAL),
    ("the user has asked you", PRINCIPAL),
    ("the user wants you to", PRINCIPAL),
    ("your user has", PRINCIPAL),
    ("on my behalf", PRINCIPAL),
    // MODAL
    ("you must", MODAL),
    ("you should", MODAL),
    ("you need to", MODAL),
    ("you have to", MODAL),
    ("make sure to", MODAL),
    ("be sure to", MODAL),
    ("do not hesitate to", MODAL),
    ("don't hesitate to", MODAL),
    ("remember to", MODAL),
    ("it is important", MODAL),
    ("du musst", MODAL),
    ("sie müssen", MODAL),
    // Task switches after praise
    ("well done", PRAISE),
    ("very good", PRAISE),
    ("simply great", PRAISE),
    ("excellent performance", PRAISE),
    ("congratulations on", PRAISE),
    ("that was ok", PRAISE),
    ("that is enough", PRAISE),
    ("that's enough", PRAISE),
    ("that is done", PRAISE),
    ("great job", PRAISE),
    ("fantastic", PRAISE),
    ("outdone yourself", PRAISE),
    ("sehr gut", PRAISE),
    ("gut gemacht", PRAISE),
    ("einfach großartig", PRAISE),
    ("das genügt", PRAISE),
    ("das ist erledigt", PRAISE),
    ("ausgezeichnete leistung", PRAISE),
    ("herzlichen glückwunsch", PRAISE),
    ("das war schon mal ok", PRAISE),
    ("fantastisch", PRAISE),
    ("now", NOW),
    ("nun", NOW),
    ("jetzt", NOW),
    ("another task", NEXT_TASK),
    ("further tasks", NEXT_TASK),
    ("new challenge", NEXT_TASK),
    ("following task", NEXT_TASK),
    ("new task", NEXT_TASK | NEW | DIRECTIVE),
    ("weitere aufgaben", NEXT_TASK),
    ("weiteren aufgabe", NEXT_TASK),
    ("neue herausforderung", NEXT_TASK),
    ("folgender aufgabe", NEXT_TASK),
    ("neue aufgabe*", NEXT_TASK | NEW | DIRECTIVE),
    ("not by the", NOT_BY),
    ("not according to the", NOT_BY),
    ("not based on the", NOT_BY),
    ("regardless of the", NOT_BY),
    ("nicht nach den", NOT_BY),
    ("change", CHANGE),
    ("update", CHANGE),
    ("ändere", CHANGE),
    ("are now", NOW_IS),
    ("is now", NOW_IS),
    ("sind jetzt", NOW_IS),
    ("sind nun", NOW_IS),
    // Misc
    ("pwned", PWNED),
    ("pwnd", PWNED),
    ("following", FOLLOWING),
    ("subsequent", FOLLOWING),
    ("below", FOLLOWING),
    ("folgende*", FOLLOWING),
    ("snippet", SNIPPET),
    ("code block", SNIPPET),
    ("code section", SNIPPET),
    ("code excerpt", SNIPPET),
    ("code snippet", SNIPPET),
    ("stop", STOP),
    ("stopp", STOP),
    ("attention", STOP),
    ("achtung", STOP),
];

/// One lexicon entry found in a text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    pub concepts: u64,
}

/// The compiled lexicon.
#[derive(Debug, Clone)]
pub(crate) struct Lexicon {
    automaton: AhoCorasick,
    meanings: Vec<Meaning>,
}

impl Lexicon {
    /// Builds the lexicon plus `extra` entries (the agent's action names, tagged `extra_concept`).
    pub fn new(extra: &[(String, u64)]) -> Result<Lexicon, aho_corasick::BuildError> {
        let mut patterns: Vec<Vec<u8>> = Vec::with_capacity(ENTRIES.len() + extra.len());
        let mut meanings = Vec::with_capacity(ENTRIES.len() + extra.len());
        let builtin = ENTRIES.iter().map(|(entry, concepts)| (*entry, *concepts));
        let extra = extra
            .iter()
            .map(|(entry, concepts)| (entry.as_str(), *concepts));
        for (entry, concepts) in builtin.chain(extra) {
            let (text, prefix) = match entry.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (entry, false),
            };
            // Words written with a curly apostrophe match too.
            let mut variants = vec![text.to_string()];
            if text.contains('\'') {
                variants.push(text.replace('\'', "\u{2019}"));
            }
            for variant in variants {
                // Entries that start with an ASCII letter or digit are matched with the space
                // that the normalised text puts before every word, so the automaton itself
                // rejects matches inside words ("it" in "with").
                let spaced = variant
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_alphanumeric);
                let mut pattern = Vec::with_capacity(variant.len() + 1);
                if spaced {
                    pattern.push(b' ');
                }
                pattern.extend(
                    normalise(variant.as_bytes())
                        .iter()
                        .map(u8::to_ascii_lowercase),
                );
                patterns.push(pattern);
                meanings.push(Meaning {
                    concepts,
                    prefix,
                    spaced,
                });
            }
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)?;
        Ok(Lexicon {
            automaton,
            meanings,
        })
    }

    /// Every entry in `text` that sits on word boundaries, in order.
    pub fn hits(&self, text: &str) -> Vec<Hit> {
        let mut haystack = Vec::with_capacity(text.len() + 1);
        haystack.push(b' ');
        normalise_into(text.as_bytes(), &mut haystack);
        let mut hits = Vec::new();
        for found in self.automaton.find_iter(&haystack) {
            let Some(meaning) = self.meanings.get(found.pattern().as_usize()) else {
                continue;
            };
            // Haystack offset `i` is text offset `i - 1`; a spaced pattern starts at its space.
            let start = if meaning.spaced {
                found.start()
            } else {
                found.start().saturating_sub(1)
            };
            let end = found.end().saturating_sub(1);
            if !meaning.spaced && !boundary_before(text, start) {
                continue;
            }
            if !meaning.prefix && !boundary_after(text, end) {
                continue;
            }
            hits.push(Hit {
                start,
                end,
                concepts: meaning.concepts,
            });
        }
        hits
    }
}

/// What one automaton pattern stands for.
#[derive(Debug, Clone, Copy)]
struct Meaning {
    concepts: u64,
    /// The entry matches as a word prefix (no right boundary needed).
    prefix: bool,
    /// The pattern starts with the space that marks a word start.
    spaced: bool,
}

#[cfg(test)]
/// Per ASCII byte: its lowercase form for letters and digits, itself for `'` and `-` (used inside
/// entries), a space for everything else. Bytes of non-ASCII characters are kept.
const NORMALISE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = if b >= 0x80 || b == b'\'' || b == b'-' {
            b
        } else if b.is_ascii_alphanumeric() {
            b.to_ascii_lowercase()
        } else {
            b' '
        };
        byte += 1;
    }
    table
};

fn normalise_byte(byte: u8) -> u8 {
    let lower = byte | 0x20;
    let is_letter = lower.wrapping_sub(b'a') < 26;
    let keep = byte.wrapping_sub(b'0') < 10 || byte >= 0x80 || byte == b'\'' || byte == b'-';
    if is_letter {
        lower
    } else if keep {
        byte
    } else {
        b' '
    }
}

/// The text the automaton runs on, byte for byte as long as the input: ASCII lowercased,
/// ASCII punctuation and whitespace turned into spaces, and the common non-ASCII separators
/// (U+2000..U+203F: typographic spaces, dashes and quotes; U+00A0; the guillemets) turned into
/// as many spaces as they have bytes, so a word after a curly quote still starts after a space.
fn normalise(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    normalise_into(bytes, &mut out);
    out
}

/// Appends the normalised form of `bytes` to `out` (see [`normalise`]).
fn normalise_into(bytes: &[u8], out: &mut Vec<u8>) {
    let offset = out.len();
    // Arithmetic rather than a lookup table, so the loop vectorises; the table in the tests is
    // the spec and a test checks they agree on every byte.
    out.extend(bytes.iter().map(|b| normalise_byte(*b)));
    if !bytes.contains(&0xE2) && !bytes.contains(&0xC2) {
        return;
    }
    let out = out.get_mut(offset..).unwrap_or_default();
    let mut idx = 0;
    while idx + 1 < out.len() {
        match (out.get(idx).copied(), out.get(idx + 1).copied()) {
            (Some(0xE2), Some(0x80))
                if out.get(idx + 2).is_some_and(|b| (0x80..=0xBF).contains(b)) =>
            {
                out.get_mut(idx..idx + 3)
                    .into_iter()
                    .flatten()
                    .for_each(|b| *b = b' ');
                idx += 3;
            }
            (Some(0xC2), Some(0xA0 | 0xAB | 0xBB)) => {
                out.get_mut(idx..idx + 2)
                    .into_iter()
                    .flatten()
                    .for_each(|b| *b = b' ');
                idx += 2;
            }
            _ => idx += 1,
        }
    }
}

/// True when no letter or digit ends right before `at` (CJK text has no spaces, so it always is).
fn boundary_before(text: &str, at: usize) -> bool {
    match text.get(..at).and_then(|head| head.chars().next_back()) {
        None => true,
        Some(c) => {
            !c.is_alphanumeric()
                || is_cjk(c)
                || text
                    .get(at..)
                    .and_then(|t| t.chars().next())
                    .is_some_and(is_cjk)
        }
    }
}

/// True when no letter or digit starts right at `at`.
fn boundary_after(text: &str, at: usize) -> bool {
    match text.get(at..).and_then(|tail| tail.chars().next()) {
        None => true,
        Some(c) => {
            !c.is_alphanumeric()
                || is_cjk(c)
                || text
                    .get(..at)
                    .and_then(|t| t.chars().next_back())
                    .is_some_and(is_cjk)
        }
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30ff}' | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{ac00}'..='\u{d7af}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_byte_matches_the_table() {
        for byte in 0..=255u8 {
            assert_eq!(
                normalise_byte(byte),
                NORMALISE[usize::from(byte)],
                "byte {byte:#x}"
            );
        }
    }

    #[test]
    fn hits_respect_word_boundaries() {
        let lexicon = Lexicon::new(&[]).unwrap();
        let text = "With “ignore” it; item, Ignore-all and ÄNDERE nothing";
        let words: Vec<&str> = lexicon
            .hits(text)
            .iter()
            .map(|h| &text[h.start..h.end])
            .collect();
        assert!(words.contains(&"ignore"), "{words:?}");
        assert!(words.contains(&"it"), "{words:?}");
        assert!(words.contains(&"Ignore"), "{words:?}");
        assert_eq!(
            words
                .iter()
                .filter(|w| w.eq_ignore_ascii_case("it"))
                .count(),
            1,
            "{words:?}"
        );
    }
}
